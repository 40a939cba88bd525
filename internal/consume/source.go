package consume

import "sync/atomic"

// Source is one consumer for as long as this process pulls it: a partition
// it owns, the keyer, or the only consumer of a replay. It is released when
// the process gives the consumer up (the partition moved to another
// process, or the process stops). What the process still holds of a
// released source is handed back, not processed — except what is already
// committing — and gets no heartbeat, so that the next owner receives it,
// before anything newer, once AckWait has passed.
type Source struct {
	name     string
	released atomic.Bool
	holding  atomic.Int64
	pin      atomic.Value // string: the pin id the server gave this process
}

// NewSource returns a source that is not released.
func NewSource(name string) *Source { return &Source{name: name} }

// Name is the consumer's name.
func (s *Source) Name() string {
	if s == nil {
		return ""
	}
	return s.name
}

// Release marks the source given up.
func (s *Source) Release() {
	if s != nil {
		s.released.Store(true)
	}
}

// Released reports whether the source was given up. A nil source never is.
func (s *Source) Released() bool { return s != nil && s.released.Load() }

// Hold counts one more message held from the source; Done one less.
func (s *Source) Hold() {
	if s != nil {
		s.holding.Add(1)
	}
}

// Done counts a held message settled.
func (s *Source) Done() {
	if s != nil {
		s.holding.Add(-1)
	}
}

// Holding is the number of messages of the source still held.
func (s *Source) Holding() int64 {
	if s == nil {
		return 0
	}
	return s.holding.Load()
}

// SawPin records the pin id the server put on a delivered message.
func (s *Source) SawPin(id string) {
	if s != nil && id != "" {
		s.pin.Store(id)
	}
}

// Pin is the last pin id seen on the source's messages ("" for none).
func (s *Source) Pin() string {
	if s == nil {
		return ""
	}
	p, _ := s.pin.Load().(string)
	return p
}
