// Package loadgen is the engine of `xdpnet load`: N connections, each a
// goroutine sending one request at a time (HTTP/1.1 GET with keep-alive,
// or a TCP echo of a size) for a duration, as fast as the server answers
// (closed loop, as wrk) or at a fixed total rate (open loop, as wrk2).
//
// At a fixed rate every request has an intended send time on its
// connection's schedule, and its latency runs from that time, not from
// when it was sent: a server that stalls for 100 ms delays every request
// meant to go meanwhile, and the percentiles show it, where a closed
// loop would simply send fewer requests and hide the stall (coordinated
// omission). The engine dials through a function, so it runs over
// xdpnet's sockets or the kernel's alike.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/internal/latency"
)

// Config is one run.
type Config struct {
	// Conns is the number of connections, each with one request
	// outstanding at a time.
	Conns int
	// Duration is how long requests are started for; requests in
	// progress at its end finish (within Timeout) and count.
	Duration time.Duration
	// Rate, if positive, is the total requests per second, spread evenly
	// over the connections (open loop); zero sends each connection's
	// next request as soon as its last is answered.
	Rate float64
	// Timeout bounds each request and each dial; default 2 s.
	Timeout time.Duration
	// Dial opens a connection to the target.
	Dial func(ctx context.Context) (net.Conn, error)
	// Target speaks the protocol on each connection.
	Target Target
	// Progress, if set, is called about once a second with the run so
	// far, from a goroutine of its own.
	Progress func(Progress)
}

// Target makes the requester of each connection.
type Target interface {
	// NewRequester returns what sends requests on c, one at a time.
	NewRequester(c net.Conn) Requester
}

// Requester sends one request on its connection and reads the whole
// response.
type Requester interface {
	// Do sends a request and reads its response: the bytes read, and
	// whether the connection stays usable (an HTTP server may close it).
	Do() (read int, keep bool, err error)
}

// Progress is a run's state at a moment.
type Progress struct {
	Elapsed           time.Duration
	Requests, Errors  uint64
	RecentRate        float64 // requests a second over the last interval
	Connected, Target int     // connections open, and wanted
}

// Result is a finished run.
type Result struct {
	// Requests is the number answered in full; Errors those that failed
	// (dials included), by reason, and Failed their total.
	Requests uint64
	Failed   uint64
	Errors   map[string]uint64
	// Bytes is what the responses carried.
	Bytes uint64
	// Elapsed is the run's wall time, from its start to the end of its
	// last request.
	Elapsed time.Duration
	// Latency is every answered request's latency: from its intended
	// send time at a fixed rate, from its send otherwise.
	Latency *latency.Histogram
	// Conns is the most connections open at once.
	Conns int
}

// Rate is the requests answered a second.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// ErrorReasons lists Errors by count, most first: "3× timeout".
func (r *Result) ErrorReasons() []string {
	type kv struct {
		k string
		n uint64
	}
	var all []kv
	for k, n := range r.Errors {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = fmt.Sprintf("%d× %s", e.n, e.k)
	}
	return out
}

// run is a run in progress, shared by its connections.
type run struct {
	cfg      Config
	start    time.Time
	end      time.Time // no request starts after it
	hist     latency.Histogram
	requests atomic.Uint64
	failed   atomic.Uint64
	bytes    atomic.Uint64
	open     atomic.Int64
	maxOpen  atomic.Int64
	mu       sync.Mutex
	errors   map[string]uint64
}

// Run runs cfg until its Duration ends or ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	switch {
	case cfg.Conns < 1:
		return nil, fmt.Errorf("loadgen: %d connections: want at least 1", cfg.Conns)
	case cfg.Duration <= 0:
		return nil, fmt.Errorf("loadgen: duration %v: want a positive one", cfg.Duration)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("loadgen: rate %v: want a positive one, or 0 for as fast as possible", cfg.Rate)
	case cfg.Dial == nil || cfg.Target == nil:
		return nil, errors.New("loadgen: Dial and Target are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	r := &run{cfg: cfg, errors: map[string]uint64{}, start: time.Now()}
	r.end = r.start.Add(cfg.Duration)
	ctx, cancel := context.WithDeadline(ctx, r.end.Add(cfg.Timeout))
	defer cancel()
	var wg sync.WaitGroup
	for i := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.conn(ctx, i)
		}()
	}
	stopProgress := r.reportProgress()
	wg.Wait()
	stopProgress()
	res := &Result{Requests: r.requests.Load(), Failed: r.failed.Load(), Errors: r.errors,
		Bytes: r.bytes.Load(), Elapsed: time.Since(r.start),
		Latency: &r.hist, Conns: int(r.maxOpen.Load())}
	return res, nil
}

// conn is connection i's loop: dial, then requests until the run ends,
// redialling after an error.
func (r *run) conn(ctx context.Context, i int) {
	// At a fixed rate connection i sends every interval, its schedule
	// offset by i/Conns of one, so the requests spread evenly in time.
	var interval time.Duration
	next := r.start
	if r.cfg.Rate > 0 {
		interval = time.Duration(float64(r.cfg.Conns) / r.cfg.Rate * float64(time.Second))
		next = r.start.Add(interval * time.Duration(i) / time.Duration(r.cfg.Conns))
	}
	var c net.Conn
	var req Requester
	defer func() {
		if c != nil {
			r.closeConn(c)
		}
	}()
	for {
		if interval > 0 {
			if !next.Before(r.end) || !sleepUntil(ctx, next) {
				return
			}
		} else if !time.Now().Before(r.end) || ctx.Err() != nil {
			return
		}
		if c == nil {
			var err error
			if c, err = r.dial(ctx); err != nil {
				r.fail("connect: " + reason(err))
				// Not a tight loop against a dead server: the next try
				// waits for the next request's time, or a short pause.
				if interval == 0 && !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
					return
				}
				next = next.Add(interval)
				continue
			}
			req = r.cfg.Target.NewRequester(c)
		}
		sent := time.Now()
		if interval > 0 {
			sent = next // the intended time: no coordinated omission
			next = next.Add(interval)
		}
		c.SetDeadline(time.Now().Add(r.cfg.Timeout))
		n, keep, err := req.Do()
		if err != nil {
			r.fail(reason(err))
			r.closeConn(c)
			c = nil
			continue
		}
		r.hist.Record(time.Since(sent))
		r.requests.Add(1)
		r.bytes.Add(uint64(n))
		if !keep {
			r.closeConn(c)
			c = nil
		}
	}
}

func (r *run) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	c, err := r.cfg.Dial(ctx)
	if err != nil {
		return nil, err
	}
	raise(&r.maxOpen, r.open.Add(1))
	return c, nil
}

func (r *run) closeConn(c net.Conn) {
	c.Close()
	r.open.Add(-1)
}

func raise(x *atomic.Int64, v int64) {
	for m := x.Load(); v > m && !x.CompareAndSwap(m, v); m = x.Load() {
	}
}

// fail counts a failed request by its reason.
func (r *run) fail(why string) {
	r.failed.Add(1)
	r.mu.Lock()
	r.errors[why]++
	r.mu.Unlock()
}

// reason names an error's kind, not its addresses, so that failures
// group: "timeout", "connection reset by peer", "EOF".
func reason(err error) string {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return reason(oe.Err)
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return reason(se.Err)
	}
	return err.Error()
}

// sleepUntil waits for t, or reports false if ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reportProgress calls Progress every second until the returned stop.
func (r *run) reportProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := uint64(0), r.start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				n := r.requests.Load()
				r.cfg.Progress(Progress{Elapsed: now.Sub(r.start), Requests: n, Errors: r.failed.Load(),
					RecentRate: float64(n-last) / now.Sub(lastAt).Seconds(),
					Connected:  int(r.open.Load()), Target: r.cfg.Conns})
				last, lastAt = n, now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
