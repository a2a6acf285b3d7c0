package fastpath

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Run polls until ctx ends or the link fails, on a clock that starts at 0.
// Its placement follows docs/DESIGN.md's measurements on the lab machines:
//   - it never locks its OS thread, and yields the processor once per
//     round that readied an app goroutine (in Poll, before output), which
//     then runs at once on the same P (~0.4 µs a handoff, against ~100 µs
//     through another P);
//   - while frames or app work keep coming, and for Config.Spin after
//     (default 200 µs), it polls, yielding between rounds that received
//     no frame (even while output waits for a transmit buffer, which
//     another goroutine may hold);
//   - then it parks in the Go netpoller (nic.Parker) until a frame, the
//     next timer or an app goroutine's Wake, so an idle stack costs no CPU.
//
// With Config.SpinOnly it never parks: for a core dedicated to the poller.
func (p *Poller) Run(ctx context.Context) error {
	start := time.Now()
	stop := context.AfterFunc(ctx, func() {
		if p.parker != nil {
			p.parker.Wake()
		}
	})
	defer stop()
	var lastWork time.Duration
	for ctx.Err() == nil {
		now := time.Since(start)
		n, err := p.Poll(now)
		if err != nil {
			return err
		}
		if n > 0 || p.woke || p.more || p.pendingAppWork() {
			lastWork = now
			if n == 0 {
				// Nothing came: what the round waits for (a transmit
				// buffer the peer holds, an app's next write) may be
				// another goroutine's to do, readied on this P. Without
				// a yield it waits for the runtime's preemption (10 ms):
				// measured, a bulk transfer over the pipe fell from ~1.7
				// GB/s to ~140 MB/s for seconds, the sender's poller
				// spinning on TxNoBuffer while the receiver's waited.
				runtime.Gosched()
			}
			continue
		}
		if p.spinOnly || now-lastWork < p.spin {
			runtime.Gosched()
			continue
		}
		if err := p.park(ctx, start); err != nil {
			return err
		}
		lastWork = time.Since(start)
	}
	return nil
}

// maxPark bounds a park without a timer on a link that cannot be woken
// (no nic.Parker), so Run still notices its context's end.
const maxPark = time.Millisecond

// park sleeps until a frame, the next timer, or an app goroutine's Wake.
// The order loses no wakeup: arm the deadline, publish the sleeping flag,
// then re-check the app's queues; a waker clears the flag and calls Wake.
func (p *Poller) park(ctx context.Context, start time.Time) error {
	var deadline time.Time
	if t, ok := p.Deadline(); ok {
		deadline = start.Add(t)
	}
	if p.parker == nil {
		wait := maxPark
		if !deadline.IsZero() {
			wait = max(0, min(wait, time.Until(deadline)))
		}
		time.Sleep(wait)
		return nil
	}
	if err := p.parker.Arm(deadline); err != nil {
		return err
	}
	p.sleeping.Store(true)
	if p.pendingAppWork() || ctx.Err() != nil {
		p.sleeping.Store(false)
		return nil
	}
	err := p.parker.Park()
	p.sleeping.Store(false)
	p.stats.Parks++
	return err
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
