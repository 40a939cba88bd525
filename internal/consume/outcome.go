package consume

import (
	"fmt"
	"time"
)

// Permanent marks a message that can never succeed: dead-letter it.
type Permanent struct {
	Code string // dead-letter code, e.g. invalid_event
	Err  error
}

func (e *Permanent) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *Permanent) Unwrap() error { return e.Err }

// NewPermanent builds a Permanent outcome.
func NewPermanent(code string, err error) *Permanent { return &Permanent{Code: code, Err: err} }

// Retry marks a message that may succeed later (a return whose original
// order is not processed yet). After the last delivery it is dead-lettered
// with Code.
type Retry struct {
	Code  string
	Delay time.Duration // 0: the default schedule by delivery count
	Err   error
}

func (e *Retry) Error() string { return fmt.Sprintf("%s (retry): %v", e.Code, e.Err) }
func (e *Retry) Unwrap() error { return e.Err }

// RetryDelay is the NakWithDelay schedule by delivery number (1-based):
// 1s, 2s, 5s, 10s, 30s, then 1 minute.
func RetryDelay(delivery uint64) time.Duration {
	steps := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}
	if delivery >= 1 && int(delivery) <= len(steps) {
		return steps[delivery-1]
	}
	return time.Minute
}
