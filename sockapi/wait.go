package sockapi

import (
	"sync"
	"sync/atomic"
	"time"
)

// bell is a doorbell an app goroutine waits on and the poller rings. It
// costs the poller one atomic load when nobody waits: the channel is
// touched only when the waiting flag is up.
type bell struct {
	waiting atomic.Bool
	ch      chan struct{}
}

func newBell() bell { return bell{ch: make(chan struct{}, 1)} }

// ring wakes the waiter, if any, and reports whether there was one.
func (b *bell) ring() bool {
	if !b.waiting.Load() {
		return false
	}
	select {
	case b.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// wait blocks until ready reports true, the bell rings, or one of the
// channels is closed (a deadline or a close); ready is checked after the
// waiting flag is up, so a ring between the caller's last check and the
// wait is not lost. It returns the channel that ended the wait, or nil.
func (b *bell) wait(ready func() bool, deadline, closed, stack <-chan struct{}) <-chan struct{} {
	b.waiting.Store(true)
	defer b.waiting.Store(false)
	if ready() {
		return nil
	}
	select {
	case <-b.ch:
		return nil
	case <-deadline:
		return deadline
	case <-closed:
		return closed
	case <-stack:
		return stack
	}
}

// deadline is a settable deadline whose wait channel is closed when it
// passes, as Go's net package behaves: setting it again, even while a
// Read or Write is blocked, takes effect at once; a time in the past
// makes waits fail at once; the zero time removes it.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
