package main

import (
	"net/netip"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// Both receivers get the same UMEM and ring shape.
const (
	rxFrames    = 4096
	rxFrameSize = 4096
	rxRing      = 2048
	rxBatch     = 64
)

// receiver is one side of the comparison: it drops every frame it gets.
type receiver interface {
	fd() int
	// drain takes what the RX ring holds, gives the frames back to the
	// fill ring, and returns how many it took; 0 means poll(2) first.
	drain() int
	close()
}

// BenchmarkRxDrop receives b.N 64-byte frames that an AF_XDP sender on the
// peer blasts at the stack's address, and drops them: the cost of the ring
// layer alone, ours against asavie/xdp's, with the same UMEM, rings, XDP
// program and sender. The sender on this 2-vCPU lab caps frames/s, so the
// figure to compare is the receiver thread's CPU time per frame.
//
// Two receive loops:
//   - interval: wake every 500 µs and drain the RX ring (interrupt
//     coalescing in user space; the 2048-entry ring holds ~2.8 ms of this
//     traffic). Both receivers make the same syscalls per second, so CPU
//     per frame compares the ring layers; drain-ns/frame is the wall time
//     spent in drain calls alone, the ring layer's own cost.
//   - poll: drain, and poll(2) whenever the ring is empty. A faster
//     receiver empties the ring sooner and so sleeps and wakes more often
//     (see sleeps/frame): it pays the kernel's wakeup per frame instead of
//     per batch.
func BenchmarkRxDrop(b *testing.B) {
	for _, loop := range []string{"interval", "poll"} {
		for _, impl := range []struct {
			name string
			open func(*lab.Lab) (receiver, error)
		}{
			{"xdpnet", openOurs},
			{"xdpnet-link", openLink},
			{"asavie", openAsavie},
		} {
			b.Run(loop+"/"+impl.name, func(b *testing.B) { benchRxDrop(b, impl.open, loop == "interval") })
		}
	}
}

func benchRxDrop(b *testing.B, open func(*lab.Lab) (receiver, error), interval bool) {
	needCPUs(b)
	l := lab.New(b, lab.Config{Mode: lab.Native})
	var rx receiver
	require.NoError(b, l.Local.Do(func() (err error) {
		rx, err = open(l)
		return err
	}))
	defer rx.close()
	tx, err := newSender(l)
	require.NoError(b, err)
	defer tx.close()
	tx.start(flood{dst: l.StackAddr})
	defer func() {
		_, err := tx.stop()
		require.NoError(b, err)
	}()

	r := receive(b, rx, b.N, interval)
	b.ReportMetric(float64(r.cpu.Nanoseconds())/float64(r.frames), "cpu-ns/frame")
	b.ReportMetric(float64(r.frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(r.sleeps)/float64(r.frames), "sleeps/frame")
	b.ReportMetric(float64(r.draining.Nanoseconds())/float64(r.frames), "drain-ns/frame")
	b.ReportMetric(0, "ns/op") // wall time per frame is the sender's, not ours
}

type rxResult struct {
	frames, sleeps int
	cpu, draining  time.Duration
}

// receive runs rx on one pinned, locked thread until it has n frames or the
// time limit passes.
func receive(b *testing.B, rx receiver, n int, interval bool) rxResult {
	unpin, err := pinThread(receiveCPU)
	require.NoError(b, err)
	defer unpin()
	fds := []unix.PollFd{{Fd: int32(rx.fd()), Events: unix.POLLIN}}
	nap := unix.Timespec{Nsec: 500_000}
	deadline := time.Now().Add(timeLimit)
	// Let the sender reach full speed before the clock starts.
	for got := 0; got < rxFrames && time.Now().Before(deadline); got += rx.drain() {
		unix.Poll(fds, 100)
	}
	b.ResetTimer()
	var r rxResult
	start := threadCPU()
	for r.frames < n && time.Now().Before(deadline) {
		t0 := time.Now()
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
	r.cpu = threadCPU() - start
	b.StopTimer()
	if r.frames < n {
		b.Fatalf("received %d of %d frames in %v", r.frames, n, timeLimit)
	}
	return r
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

func openAsavie(l *lab.Lab) (receiver, error) {
	s, err := asavie.NewSocket(l.Local.Ifindex, 0, &asavie.SocketOptions{
		NumFrames: rxFrames, FrameSize: rxFrameSize,
		FillRingNumDescs: rxRing, CompletionRingNumDescs: rxRing, RxRingNumDescs: rxRing, TxRingNumDescs: rxRing,
	})
	if err != nil {
		return nil, err
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

func (t *theirs) close() {
	if t.prog != nil {
		t.prog.Close()
	}
	t.sock.Close()
}
