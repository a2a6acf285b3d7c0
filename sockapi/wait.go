package sockapi

import (
	"net"
	"os"
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

// bells are a socket's doorbells, for its readers and its writers. They
// are the Owner of the core's connection or endpoints (a tcp.Notifier,
// a udp.Notifier): the poller calls Notify when the socket has news
// (data, room, an error, the end), which rings both; a woken call checks
// what it waits for. Kept apart from the socket so that Notify is not in
// its API.
type bells struct{ r, w bell }

func newBells() bells { return bells{r: newBell(), w: newBell()} }

// Notify rings both bells and reports whether it woke a goroutine.
func (b *bells) Notify() bool {
	r := b.r.ring()
	w := b.w.ring()
	return r || w
}

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

// waitErr waits on b until ready (see bell.wait) and maps the end of the
// wait to the error a blocked net call returns: net.ErrClosed for the
// socket's or the stack's close, os.ErrDeadlineExceeded for the deadline.
func waitErr(b *bell, dl *deadline, ready func() bool, closed, stack <-chan struct{}) error {
	switch b.wait(ready, dl.wait(), closed, stack) {
	case nil:
		return nil
	case closed, stack:
		return net.ErrClosed
	default:
		return os.ErrDeadlineExceeded
	}
}

// deadline is a settable deadline whose wait channel is closed when it
// passes, as Go's net package behaves: setting it again, even while a
// Read or Write is blocked, takes effect at once; a time in the past
// makes waits fail at once; the zero time removes it. One timer serves
// every deadline of the socket (net/http moves them on every request),
// so only reopening a passed deadline allocates: a new channel.
type deadline struct {
	mu     sync.Mutex
	when   time.Time     // zero: none
	timer  *time.Timer   // runs fire; made on first use
	cancel chan struct{} // closed when the deadline passes
}

func newDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if d.timer != nil {
		// A fire already under way finds d.when moved and does nothing.
		d.timer.Stop()
	}
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
		if d.timer == nil {
			d.timer = time.AfterFunc(dur, d.fire)
		} else {
			d.timer.Reset(dur)
		}
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// fire closes the channel if the deadline set now has passed; a timer
// that fired early for it (a wall-clock deadline) is armed again.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.when.IsZero() || isClosed(d.cancel) {
		return
	}
	if dur := time.Until(d.when); dur > 0 {
		d.timer.Reset(dur)
		return
	}
	close(d.cancel)
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
