package workers

import "sync"

// lane is a queue of items of some keys, taken in arrival order by one
// goroutine. push never blocks: the consumers' MaxAckPending bounds what
// arrives, and an item waiting here is already beaten.
type lane struct {
	mu     sync.Mutex
	q      []*item
	closed bool
	ready  chan struct{}
}

func newLane() *lane { return &lane{ready: make(chan struct{}, 1)} }

// push queues it; false when the lane was closed (the caller hands it back).
func (l *lane) push(it *item) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.q = append(l.q, it)
	l.mu.Unlock()
	l.signal()
	return true
}

func (l *lane) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// wait blocks until an item is queued (true) or the lane is closed and
// empty (false).
func (l *lane) wait() bool {
	for {
		l.mu.Lock()
		n, closed := len(l.q), l.closed
		l.mu.Unlock()
		if n > 0 {
			return true
		}
		if closed {
			return false
		}
		<-l.ready
	}
}

// len is the number of items queued.
func (l *lane) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}

// take moves up to n items, oldest first, to dst.
func (l *lane) take(dst []*item, n int) []*item {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := min(n, len(l.q))
	dst = append(dst, l.q[:k]...)
	rest := copy(l.q, l.q[k:])
	clear(l.q[rest:])
	l.q = l.q[:rest]
	return dst
}

// close lets wait return false once the queue is empty.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}
