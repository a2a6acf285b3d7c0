package fastpath

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Waiter is a link that can block until frames arrive: the AF_XDP link
// waits in poll(2) on its socket.
type Waiter interface {
	Wait(timeout time.Duration) error
}

// maxWait bounds one blocking wait, so Run notices its context's end.
const maxWait = 10 * time.Millisecond

// Run polls until ctx ends or the link fails, on a clock that starts at 0.
// While frames keep coming it spins, yielding the processor once per round
// (never locking the thread: DESIGN.md's placement measurements); after
// Config.Spin without a frame it blocks in the link's Wait until a frame
// arrives or the next timer is due.
func (p *Poller) Run(ctx context.Context) error {
	start := time.Now()
	var lastFrame time.Duration
	for ctx.Err() == nil {
		now := time.Since(start)
		n, err := p.Poll(now)
		if err != nil {
			return err
		}
		if n > 0 {
			lastFrame = now
			runtime.Gosched()
			continue
		}
		if now-lastFrame < p.spin {
			runtime.Gosched()
			continue
		}
		wait := maxWait
		if t, ok := p.Deadline(); ok {
			wait = max(0, min(wait, t-now))
		}
		if w, ok := p.link.(Waiter); ok {
			if err := w.Wait(wait); err != nil {
				return err
			}
		} else {
			time.Sleep(wait)
		}
	}
	return nil
}

// Start runs Run on a goroutine of its own and returns stop, which ends it,
// waits for it and returns Run's error (nil after a clean stop). Once stop
// returns, the poller belongs to the caller's goroutine again. stop may be
// called more than once.
func (p *Poller) Start() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return sync.OnceValue(func() error {
		cancel()
		return <-done
	})
}
