package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

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

// benchRxDrop runs one receiver for b.N frames on a lab of its own.
func benchRxDrop(b *testing.B, open func(*lab.Lab) (receiver, error), interval bool) {
	needCPUs(b)
	l := lab.New(b, lab.Config{Mode: lab.Native})
	tx, err := newSender(l)
	require.NoError(b, err)
	defer tx.close()

	r, err := rxRun(context.Background(), l, tx, open, b.N, 0, interval, b.ResetTimer)
	b.StopTimer()
	require.NoError(b, err)
	b.ReportMetric(float64(r.cpu.Nanoseconds())/float64(r.frames), "cpu-ns/frame")
	b.ReportMetric(float64(r.frames)/r.wall.Seconds(), "frames/s")
	b.ReportMetric(float64(r.sleeps)/float64(r.frames), "sleeps/frame")
	b.ReportMetric(float64(r.draining.Nanoseconds())/float64(r.frames), "drain-ns/frame")
	b.ReportMetric(0, "ns/op") // wall time per frame is the sender's, not ours
}
