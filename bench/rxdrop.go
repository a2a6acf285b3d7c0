package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	asavie "github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// The ring layer alone, ours against asavie/xdp's, receiving a flood of
// 64-byte frames and dropping them: the rxdrop workload of the command
// and BenchmarkRxDrop (see there for what the figures mean).

// Every receiver gets the same UMEM and ring shape.
const (
	rxFrames    = 4096
	rxFrameSize = 4096
	rxRing      = 2048
	rxBatch     = 64
)

// Bounds of a receive run besides its own: how long the sender has to
// fill the ring once before the clock starts, and how long to retry an
// open that finds the queue still held (EBUSY) by a receiver just closed.
const (
	rxWarmLimit = 5 * time.Second
	rxBusyLimit = 2 * time.Second
	rxBusyRetry = 50 * time.Millisecond
)

// receiver is one side of the comparison: it drops every frame it gets.
type receiver interface {
	fd() int
	// drain takes what the RX ring holds, gives the frames back to the
	// fill ring, and returns how many it took; 0 means poll(2) first.
	drain() int
	close()
}

// rxDrop opens impl's receiver ("xdpnet": our ring layer, "asavie":
// asavie/xdp's) on l's Local end, floods it from tx and drains it every
// 500 µs for d (the interval loop of BenchmarkRxDrop), or until ctx ends.
// It returns "Mpps", the frames received per second in millions, and
// "cpu-ns/frame", the receiving thread's CPU time per frame.
func rxDrop(ctx context.Context, l *lab.Lab, tx *sender, impl string, d time.Duration) (map[string]float64, error) {
	open := map[string]func(*lab.Lab) (receiver, error){"xdpnet": openOurs, "asavie": openAsavie}[impl]
	if open == nil {
		return nil, fmt.Errorf("rxdrop: no receiver %q: want xdpnet or asavie", impl)
	}
	r, err := rxRun(ctx, l, tx, open, 0, d, true, nil)
	if err != nil {
		return nil, fmt.Errorf("rxdrop on %s: %w", impl, err)
	}
	return map[string]float64{
		"Mpps":         float64(r.frames) / r.wall.Seconds() / 1e6,
		"cpu-ns/frame": float64(r.cpu.Nanoseconds()) / float64(r.frames),
	}, nil
}

// rxRun opens a receiver with open in l's Local namespace, starts tx's
// flood at l.StackAddr and runs receive on it (n, d, interval and started
// as there); the receiver is closed and the sender stopped on return.
func rxRun(ctx context.Context, l *lab.Lab, tx *sender, open func(*lab.Lab) (receiver, error), n int, d time.Duration, interval bool, started func()) (rxResult, error) {
	rx, err := openBusy(l, open)
	if err != nil {
		return rxResult{}, err
	}
	defer rx.close()
	tx.start(flood{dst: l.StackAddr})
	r, err := receive(ctx, rx, n, d, interval, started)
	_, serr := tx.stop()
	return r, errors.Join(err, serr)
}

// openBusy opens a receiver in l's Local namespace, retrying for up to
// rxBusyLimit while the queue is busy: the kernel frees a closed socket's
// queue from a work queue, so an open right after a close can meet EBUSY.
func openBusy(l *lab.Lab, open func(*lab.Lab) (receiver, error)) (receiver, error) {
	deadline := time.Now().Add(rxBusyLimit)
	for {
		var rx receiver
		err := l.Local.Do(func() (err error) {
			rx, err = open(l)
			return err
		})
		if err == nil {
			return rx, nil
		}
		if !isBusy(err) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("queue 0 of %s still busy after %v: %w", l.Local.Link, rxBusyLimit, err)
		}
		time.Sleep(rxBusyRetry)
	}
}

// isBusy says whether err is EBUSY. asavie/xdp formats its errors with
// %v, which drops the errno, so its text is matched too.
func isBusy(err error) bool {
	return errors.Is(err, unix.EBUSY) || strings.Contains(err.Error(), unix.EBUSY.Error())
}

// rxResult is what a receive run measured, from the clock's start.
type rxResult struct {
	frames, sleeps int
	cpu, draining  time.Duration
	wall           time.Duration
}

// receive runs rx on one pinned, locked thread. Once the sender has
// filled the ring (rxFrames received) it calls started, if not nil, and
// measures until it has n frames (n > 0), d passes (0: timeLimit) or ctx
// ends. interval picks the loop: drain every 500 µs, or poll(2) whenever
// the ring is empty (see BenchmarkRxDrop). It fails if it received fewer
// than n frames, or none.
func receive(ctx context.Context, rx receiver, n int, d time.Duration, interval bool, started func()) (rxResult, error) {
	unpin, err := pinThread(receiveCPU)
	if err != nil {
		return rxResult{}, err
	}
	defer unpin()
	if d <= 0 || d > timeLimit {
		d = timeLimit
	}
	fds := []unix.PollFd{{Fd: int32(rx.fd()), Events: unix.POLLIN}}
	nap := unix.Timespec{Nsec: 500_000}
	// Let the sender reach full speed before the clock starts.
	warm := time.Now().Add(rxWarmLimit)
	for got := 0; got < rxFrames; got += rx.drain() {
		if err := ctx.Err(); err != nil {
			return rxResult{}, err
		}
		if time.Now().After(warm) {
			return rxResult{}, fmt.Errorf("warm-up: received %d of %d frames in %v", got, rxFrames, rxWarmLimit)
		}
		unix.Poll(fds, 100)
	}
	if started != nil {
		started()
	}
	var r rxResult
	done := ctx.Done() // a channel receive: cheaper than ctx.Err in the loop
	start := time.Now()
	end := start.Add(d)
	cpu0 := threadCPU()
loop:
	for n <= 0 || r.frames < n {
		t0 := time.Now()
		if t0.After(end) {
			break
		}
		select {
		case <-done:
			break loop
		default:
		}
		if interval {
			for m := rx.drain(); m > 0; m = rx.drain() {
				r.frames += m
			}
			r.draining += time.Since(t0)
			unix.Nanosleep(&nap, nil)
		} else if m := rx.drain(); m > 0 {
			r.frames += m
			r.draining += time.Since(t0)
			continue
		} else {
			unix.Poll(fds, 100)
		}
		r.sleeps++
	}
	r.cpu = threadCPU() - cpu0
	r.wall = time.Since(start)
	switch {
	case ctx.Err() != nil:
		return r, ctx.Err()
	case n > 0 && r.frames < n:
		return r, fmt.Errorf("received %d of %d frames in %v", r.frames, n, d)
	case r.frames == 0:
		return r, fmt.Errorf("received no frames in %v", d)
	}
	return r, nil
}

// threadCPU returns the calling thread's CPU time. The total is exact
// (the scheduler's runtime); this kernel splits it into user and system by
// tick sampling only, so the split is not reported.
func threadCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// steered attaches the steering program for the lab's stack address and
// registers the receiver's socket on queue 0.
func steered(l *lab.Lab, rx receiver) (*steer.Program, error) {
	prog, err := steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Addrs: []netip.Addr{l.StackAddr}, Mode: steer.Native})
	if err != nil {
		return nil, err
	}
	if err := prog.Register(0, rx.fd()); err != nil {
		prog.Close()
		return nil, err
	}
	return prog, nil
}

// ours is the ring layer used directly.
type ours struct {
	umem *xdp.Umem
	sock *xdp.Socket
	prog *steer.Program
}

// openOurs opens our ring layer's socket on queue 0 of l's Local link;
// call it in Local's namespace.
func openOurs(l *lab.Lab) (receiver, error) {
	u, err := xdp.NewUmem(xdp.UmemConfig{FrameCount: rxFrames, FrameSize: rxFrameSize})
	if err != nil {
		return nil, err
	}
	o := &ours{umem: u}
	if o.sock, err = xdp.NewSocket(u, xdp.SocketConfig{Ifindex: l.Local.Ifindex, RxSize: rxRing, FillSize: rxRing, TxSize: rxRing, CompletionSize: rxRing}); err != nil {
		u.Close()
		return nil, err
	}
	if o.prog, err = steered(l, o); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

func (o *ours) fd() int { return o.sock.FD() }

func (o *ours) drain() int {
	rx, fill, frames := o.sock.RX, o.sock.Fill, o.sock.Frames
	idx, n := rx.Peek(rxBatch)
	if n == 0 {
		return 0
	}
	fidx, _ := fill.Reserve(n) // the fill ring is as large as the share: never short
	for i := range n {
		base := frames.Base(rx.At(idx + i).Addr)
		frames.Move(base, xdp.OwnerFill, xdp.OwnerApp)
		frames.Move(base, xdp.OwnerApp, xdp.OwnerFill)
		fill.Set(fidx+i, base)
	}
	rx.Release(n)
	fill.Submit(n)
	o.sock.WakeRx()
	return int(n)
}

func (o *ours) close() {
	if o.prog != nil {
		o.prog.Close()
	}
	o.sock.Close()
	o.umem.Close()
}

// link is the nic.Link the stack uses, over the same ring layer.
type link struct {
	*nic.XDPLink
	dev *nic.XDPDevice
	fs  []nic.Frame
}

// openLink opens the stack's nic.XDPDevice on l's Local link; call it in
// Local's namespace.
func openLink(l *lab.Lab) (receiver, error) {
	dev, err := nic.OpenXDP(nic.XDPConfig{
		Interface: l.Local.Link, Addrs: []netip.Addr{l.StackAddr}, Attach: steer.Native,
		Umem:   xdp.UmemConfig{FrameCount: rxFrames, FrameSize: rxFrameSize},
		Socket: xdp.SocketConfig{RxSize: rxRing, FillSize: rxRing, TxSize: rxRing, CompletionSize: rxRing},
	})
	if err != nil {
		return nil, err
	}
	return &link{XDPLink: dev.Links()[0], dev: dev, fs: make([]nic.Frame, rxBatch)}, nil
}

func (k *link) fd() int { return k.Socket().FD() }

func (k *link) drain() int {
	n, _ := k.Receive(k.fs)
	k.Release(k.fs[:n])
	return n
}

func (k *link) close() { k.dev.Close() }

// theirs is asavie/xdp's socket, steered by our program (its own program
// redirects every frame, which would take the host's traffic too).
type theirs struct {
	sock *asavie.Socket
	prog *steer.Program
}

// openAsavie opens asavie/xdp's socket on queue 0 of l's Local link; call
// it in Local's namespace.
func openAsavie(l *lab.Lab) (receiver, error) {
	s, err := asavie.NewSocket(l.Local.Ifindex, 0, &asavie.SocketOptions{
		NumFrames: rxFrames, FrameSize: rxFrameSize,
		FillRingNumDescs: rxRing, CompletionRingNumDescs: rxRing, RxRingNumDescs: rxRing, TxRingNumDescs: rxRing,
	})
	if err != nil {
		// An EBUSY retry would otherwise leak a socket per try (see
		// unmapOrphans); if the unmap fails, the error says so.
		_, uerr := unmapOrphans()
		return nil, errors.Join(err, uerr)
	}
	s.Fill(s.GetDescs(rxRing))
	t := &theirs{sock: s}
	if t.prog, err = steered(l, t); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *theirs) fd() int { return t.sock.FD() }

// drain is asavie/xdp's documented receive loop: fill what the fill ring
// has room for, then take the received descriptors.
func (t *theirs) drain() int {
	if n := t.sock.NumFreeFillSlots(); n > 0 {
		t.sock.Fill(t.sock.GetDescs(n))
	}
	n := t.sock.NumReceived()
	if n == 0 {
		return 0
	}
	return len(t.sock.Receive(min(n, rxBatch)))
}

// close closes the socket, and first unmaps its rings: asavie/xdp's
// Close leaves them mapped, and a mapping holds the socket open, bound to
// the queue, so the next receiver's bind would fail with EBUSY for as long
// as this process lives.
func (t *theirs) close() {
	if t.prog != nil {
		t.prog.Close()
	}
	unmapSocket(t.sock.FD()) // on failure the next open says the queue is busy
	t.sock.Close()
}

// unmapSocket unmaps every mapping of socket fd in this process.
func unmapSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	name := fmt.Sprintf("socket:[%d]", st.Ino)
	_, err := unmapSockets(func(s string) bool { return s == name })
	return err
}

// unmapOrphans unmaps every socket mapping of this process whose socket
// no open fd names: what asavie/xdp's failed NewSocket leaves (its error
// path closes the fd and leaves the rings mapped), each holding a socket
// and its pinned UMEM until the process ends. Ours unmaps before it
// closes, so it has no such mappings even while closing. It returns how
// many it unmapped.
func unmapOrphans() (int, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	open := map[string]bool{}
	for _, fd := range fds {
		if name, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil {
			open[name] = true
		}
	}
	return unmapSockets(func(s string) bool { return !open[s] })
}

// unmapSockets unmaps every mapping of a socket in this process whose
// name in /proc/self/maps ("socket:[<inode>]") match accepts, and
// returns how many it unmapped.
func unmapSockets(match func(name string) bool) (int, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[5], "socket:[") || !match(f[5]) {
			continue
		}
		var start, end uintptr
		if _, err := fmt.Sscanf(f[0], "%x-%x", &start, &end); err != nil {
			errs = append(errs, fmt.Errorf("/proc/self/maps: %q: %w", line, err))
			continue
		}
		// A raw munmap: the memory is not Go's, and syscall.Munmap wants
		// the slice that asavie/xdp did not keep.
		if _, _, e := unix.Syscall(unix.SYS_MUNMAP, start, end-start, 0); e != 0 {
			errs = append(errs, fmt.Errorf("munmap %s: %w", f[0], e))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
