package fastpath_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestSimDeliveryRate: one flow through a 50 Mbit/s bottleneck at 10 ms
// RTT, with a queue larger than the receive window (a fixed 128 KiB,
// auto-tuning off) so that
// nothing is lost and the queue never empties once the flow is up: the
// sender's delivery rate (draft-cheng-iccrg-delivery-rate-estimation) is
// then the link's rate for payload, sample after sample, within 2 %. The
// send buffer is larger than the window, so the sender always has data
// it may not send yet: limited by the peer's window, not app-limited.
// (With the send buffer no larger than the window, everything written
// is in flight and the samples are app-limited, as Linux counts them.)
func TestSimDeliveryRate(t *testing.T) {
	const span, every = 2 * time.Second, 10 * time.Millisecond
	path := simPath{rate: 50e6, rtt: 10 * time.Millisecond, queue: 256 << 10}
	c := goodputCase{name: "rate", path: path, flows: 1, tcp: tcp.Config{SendBuffer: 512 << 10, RecvBufferMax: 128 << 10}}
	r := runGoodput(t, c, 1, span, every)
	// Every frame of a full segment is 1514 bytes on the link: Ethernet,
	// IPv4 and TCP headers with timestamps, and simMSS of payload.
	want := float64(path.rate) / 8 * simMSS / (simMSS + 14 + 20 + 32)
	f := r.flows[0]
	require.Zero(t, f.sender.Retransmits, "nothing is lost")
	n := 0
	lo, hi := uint64(1<<63), uint64(0)
	for _, s := range f.trace {
		if s.at < span/2 {
			continue // slow start, and the queue filling
		}
		n++
		lo, hi = min(lo, s.info.DeliveryRate), max(hi, s.info.DeliveryRate)
		require.False(t, s.info.DeliveryRateAppLimited, "at %v: the app always has more to send", s.at)
		require.InEpsilon(t, want, float64(s.info.DeliveryRate), 0.02, "at %v: %d B/s, the link %.0f", s.at, s.info.DeliveryRate, want)
	}
	require.Equal(t, int(span/every/2), n)
	t.Logf("delivery rate over the second half: %d–%d B/s (%.2f–%.2f of the link's payload rate, %.0f B/s); goodput %.0f B/s",
		lo, hi, float64(lo)/want, float64(hi)/want, want, f.goodput)
}
