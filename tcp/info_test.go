package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

const noSsthresh = 1<<32 - 1 // none yet: slow start's (RFC 5681 3.1)

// expectData expects segments from to from+n of mss bytes from the
// table, the last pushed if push (the end of what the app wrote).
func expectData(t *testing.T, p *peer, iss uint32, mss, from, n int, push bool) {
	t.Helper()
	for i := from; i < from+n; i++ {
		p.expect(t, seg{flags: flagsFor(push && i == from+n-1), seq: iss + 1 + uint32(mss*i), ack: peerISN + 1, win: fullWin, payload: data(mss*i, mss)})
	}
}

// TestInfoTracksFlightAndWindow: Info's bytes in flight follow what is
// sent and acknowledged, its window the peer's last advertisement, cwnd
// the initial window, held by congestion window validation while the app
// keeps 3000 bytes of its 10000 in flight, and a timeout sets the flight back
// to the one segment resent, cwnd to one segment.
func TestInfoTracksFlightAndWindow(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := serverConn(t, s, 1000)
	info := c.Info()
	assert.Equal(t, tcp.Established, info.State)
	assert.Equal(t, uint32(1000), info.SndMSS)
	assert.Equal(t, []uint32{0, 0, 512 << 7, synWin, 10000, noSsthresh},
		[]uint32{info.InFlight, info.Pipe, info.SndWnd, info.RcvWnd, info.Cwnd, info.Ssthresh})
	assert.Equal(t, []time.Duration{10 * ms, 5 * ms, 10 * ms, 200 * ms}, []time.Duration{info.RTT, info.RTTVar, info.MinRTT, info.RTO},
		"the handshake's sample: RFC 6298 2.2")
	assert.Equal(t, uint32(3), info.Reordering)
	assert.Equal(t, "", info.Timer, "nothing in flight")

	_, err := c.Write(data(0, 3000))
	require.NoError(t, err)
	expectData(t, p, iss, 1000, 0, 3, true)
	info = c.Info()
	assert.Equal(t, uint32(3000), info.InFlight)
	assert.Equal(t, uint32(3000), info.Pipe)
	assert.Equal(t, "retransmit", info.Timer)
	assert.Equal(t, 200*ms, info.TimerIn)

	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 100})
	info = c.Info()
	assert.Equal(t, []uint32{2000, 100 << 7, 10000, noSsthresh}, []uint32{info.InFlight, info.SndWnd, info.Cwnd, info.Ssthresh})
	assert.Equal(t, 200*ms, info.TimerIn, "restarted by the ACK (RFC 6298 5.3)")

	// The RTO resends the first unacknowledged segment alone.
	s.advance(150 * ms)
	assert.Equal(t, 50*ms, c.Info().TimerIn)
	s.advance(50 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	info = c.Info()
	assert.Equal(t, uint32(1000), info.InFlight)
	assert.Equal(t, 400*ms, info.RTO, "backed off")
	assert.Equal(t, 400*ms, info.TimerIn)
	assert.Equal(t, uint32(1000), info.Cwnd, "the loss window")
	assert.Equal(t, uint32(10000*7/10), info.Ssthresh, "CUBIC's beta of cwnd")
}

// rfc6298 is RFC 6298 2.2–2.3's SRTT and RTTVAR after samples, computed
// here apart from the estimator.
func rfc6298(samples ...time.Duration) (srtt, rttvar time.Duration) {
	for i, r := range samples {
		if i == 0 {
			srtt, rttvar = r, r/2
			continue
		}
		d := srtt - r
		if d < 0 {
			d = -d
		}
		rttvar += (d - rttvar) / 4 // beta = 1/4
		srtt += (r - srtt) / 8     // alpha = 1/8
	}
	return srtt, rttvar
}

// TestInfoRTT: each segment timed gives an exact sample, and RTT, RTTVar
// and MinRTT follow: RFC 6298's smoothing, and the lowest sample of the
// last five minutes, which a later sample replaces once it is older.
func TestInfoRTT(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000) // the handshake's sample: 10 ms
	samples := []time.Duration{10 * ms}
	seq := iss + 1
	// sample sends one segment and acknowledges it after rtt.
	sample := func(rtt time.Duration) {
		t.Helper()
		_, err := c.Write(data(0, 100))
		require.NoError(t, err)
		p.expect(t, seg{flags: "P.", seq: seq, ack: peerISN + 1, win: fullWin, payload: data(0, 100)})
		s.advance(rtt)
		seq += 100
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: seq, win: 512})
		samples = append(samples, rtt)
	}
	for _, rtt := range []time.Duration{30 * ms, 5 * ms, 20 * ms, 12 * ms} {
		sample(rtt)
		srtt, rttvar := rfc6298(samples...)
		info := c.Info()
		assert.Equal(t, srtt, info.RTT, "after %v", samples)
		assert.Equal(t, rttvar, info.RTTVar, "after %v", samples)
	}
	assert.Equal(t, 5*ms, c.Info().MinRTT)

	// Four minutes on, 5 ms is still the minimum; past five minutes
	// from it, the best sample taken since (9 ms, a quarter of the
	// window after it: the filter's second choice) takes its place.
	s.advance(2 * time.Minute)
	sample(9 * ms)
	s.advance(2 * time.Minute)
	sample(15 * ms)
	assert.Equal(t, 5*ms, c.Info().MinRTT)
	s.advance(time.Minute)
	sample(25 * ms)
	assert.Equal(t, 9*ms, c.Info().MinRTT)
	// Nothing lower for five minutes more: the latest sample is all
	// that is left.
	s.advance(6 * time.Minute)
	sample(40 * ms)
	assert.Equal(t, 40*ms, c.Info().MinRTT)
}

// TestInfoRetransmitsByKind: a loss repaired by fast retransmit and one
// by a timeout show in the counters by kind, the bytes sent and resent,
// the data segments each way, and when data and ACKs last moved.
func TestInfoRetransmitsByKind(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno, NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := serverConn(t, s, 1000)
	_, err := c.Write(data(0, 6000))
	require.NoError(t, err)
	expectData(t, p, iss, 1000, 0, 6, true)
	s.advance(10 * ms)
	// The second segment is lost: the first ACK, three duplicates.
	for range 4 {
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 512})
	}
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	s.advance(10 * ms)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 6001, win: 512, payload: data(0, 10)})
	const win10 = (128<<10 - 10) >> ourShift // our window with those 10 bytes unread
	p.expect(t, seg{flags: ".", seq: iss + 6001, ack: peerISN + 11, win: win10})
	info := c.Info()
	assert.Equal(t, []uint64{1, 1, 0, 0}, []uint64{info.Retransmits, info.FastRetransmits, info.RTORetransmits, info.Timeouts})
	assert.Equal(t, uint64(0), info.UndoneReductions)
	assert.Equal(t, "", info.Timer)
	// The six segments went at once, one run with one snapshot (rate.go),
	// app-limited: the handshake left nothing to send. The retransmission
	// took its bytes out of the run, and the full ACK delivers the rest:
	// 6000 bytes since the run's send, 20 ms ago.
	assert.Equal(t, []any{uint64(6000 * 1000 / 20), true}, []any{info.DeliveryRate, info.DeliveryRateAppLimited})

	// The next segment's every copy is lost: the timeout resends it,
	// twice.
	s.advance(30 * ms)
	_, err = c.Write(data(6000, 1000))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 6001, ack: peerISN + 11, win: win10, payload: data(6000, 1000)})
	for range 2 {
		s.advanceToDeadline(t)
		p.expect(t, seg{flags: "P.", seq: iss + 6001, ack: peerISN + 11, win: win10, payload: data(6000, 1000)})
	}
	s.advance(5 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 11, ack: iss + 7001, win: 512})
	info = c.Info()
	assert.Equal(t, []uint64{3, 1, 2, 2}, []uint64{info.Retransmits, info.FastRetransmits, info.RTORetransmits, info.Timeouts})
	assert.Equal(t, []uint64{7000, 7000 + 3000, 3000, 10}, []uint64{info.BytesAcked, info.BytesSent, info.BytesRetrans, info.BytesReceived})
	assert.Equal(t, []uint64{10, 1}, []uint64{info.DataSegsOut, info.DataSegsIn})
	assert.Equal(t, []uint64{2 + 4 + 1 + 1, 1 + 6 + 1 + 1 + 1 + 2}, []uint64{info.SegsIn, info.SegsOut},
		"in: the handshake's SYN and ACK (the SYN counted by the child, as Linux's), four ACKs, the data, the last ACK; "+
			"out: SYN,ACK, six segments, the fast retransmission, an ACK, one segment and its two copies")
	assert.Equal(t, 5*ms, info.LastDataSent, "the second timeout's copy")
	assert.Equal(t, 5*ms+(200+400)*ms+30*ms, info.LastDataRecv)
	assert.Zero(t, info.LastAckRecv)
}

// TestInfoReorderingFromSACK: data sent once and SACKed after data above
// it was arrived out of order, by as many segments as lie between it and
// the highest SACKed byte (Linux's tp->reordering), and so does one
// sent once that fills the hole; SACKs that only grow the highest range
// show none.
func TestInfoReorderingFromSACK(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := sackConn(t, s, 1460, true, true, false)
	_, err := c.Write(data(0, 10*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, 9)
	assert.Equal(t, uint32(3), c.Info().Reordering)
	// The ACKs come a round trip later: at once, RACK would take all
	// below the SACKed data as lost (rack.go), and pipe would count none.
	s.advance(10 * ms)
	sack := func(ack, left, right int) {
		t.Helper()
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1460*ack), win: 1024,
			sack: []wire.SACKBlock{{Left: iss + 1 + uint32(1460*left), Right: iss + 1 + uint32(1460*right)}}})
	}
	sack(1, 8, 9)
	sack(1, 8, 10)
	info := c.Info()
	assert.Equal(t, uint64(0), info.ReorderSeen)
	assert.Equal(t, uint32(7*1460), info.Pipe, "nine segments in flight, two SACKed")
	assert.Equal(t, uint32(9*1460), info.InFlight)
	sack(1, 2, 10) // 2 to 8 came after 8 and 9: six segments late
	info = c.Info()
	assert.Equal(t, []uint64{1, 3}, []uint64{info.ReorderSeen, info.SACKBlocksRecv})
	assert.Equal(t, uint32(6+2), info.Reordering, "from segment 2 to the end of 9")
	assert.Equal(t, uint32(1460), info.Pipe, "the hole, segment 1")
	ackTo(t, p, iss, 10) // the hole filled, by its original: that came late too
	assert.Equal(t, uint64(2), c.Info().ReorderSeen, "as Linux's tcp_clean_rtx_queue counts it")
	assert.Equal(t, uint32(9), c.Info().Reordering, "from segment 1 to the end of 9")
}

// TestInfoDeliveryRate: the delivery rate of
// draft-cheng-iccrg-delivery-rate-estimation, sample by sample: bytes
// delivered since a segment's send over the longer of its send and ACK
// phases. A sample is kept if it is not app-limited or beats the one
// kept; the first flight is app-limited, as Linux's (the handshake left
// nothing to send), and so is a flight after the app let the connection
// run dry.
func TestInfoDeliveryRate(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000)
	send := func(from, n int, end bool) { t.Helper(); expectData(t, p, iss, 1000, from, n, end) }
	ack := func(d time.Duration, n int) tcp.Info {
		t.Helper()
		s.advance(d)
		// A window of 128 KiB: the 40 segments below take no PSH of
		// their own (half the peer's window, markPush).
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1000*n), win: 1024})
		return c.Info()
	}
	rate := func(i tcp.Info) []any { return []any{i.DeliveryRate, i.DeliveryRateAppLimited} }

	_, err := c.Write(data(0, 10000)) // the initial window, all at once
	require.NoError(t, err)
	send(0, 10, true)
	info := ack(50*ms, 5)
	assert.Equal(t, uint64(5000), info.Delivered)
	assert.Equal(t, []any{uint64(5000 * 1000 / 50), true}, rate(info), "5000 bytes in 50 ms")
	info = ack(10*ms, 10)
	assert.Equal(t, []any{uint64(10000 * 1000 / 60), true}, rate(info), "10000 bytes in 60 ms, all since the flight's start: higher")
	s.expectNothing(t) // nothing left to send: app-limited

	// Then 40 segments written: cwnd (20 segments) lets 20 go,
	// app-limited, since they were sent with the path empty; their first
	// half's ACK clears that and lets the other 20 go.
	_, err = c.Write(data(10000, 40000))
	require.NoError(t, err)
	send(10, 20, false)
	info = ack(20*ms, 20)
	assert.Equal(t, []any{uint64(10000 * 1000 / 20), true}, rate(info), "app-limited but higher")
	send(30, 20, true)
	// Their ACK 100 ms on: 30000 bytes delivered since the first of
	// them was sent, in the ACK phase of 100 ms (the send phase, from
	// the flight's start, was 20 ms). Lower, and kept: not app-limited.
	info = ack(100*ms, 50)
	assert.Equal(t, uint64(50000), info.Delivered)
	assert.Equal(t, []any{uint64(30000 * 1000 / 100), false}, rate(info))
	s.expectNothing(t)

	// Run dry again: a lone segment's app-limited sample, 1000 bytes in
	// 10 ms, does not replace the one kept.
	s.advance(time.Second)
	_, err = c.Write(data(50000, 1000))
	require.NoError(t, err)
	send(50, 1, true)
	info = ack(10*ms, 51)
	assert.Equal(t, uint64(51000), info.Delivered)
	assert.Equal(t, []any{uint64(30000 * 1000 / 100), false}, rate(info))
}

// TestInfoAllocs: reading Info allocates nothing.
func TestInfoAllocs(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, c, _ := serverConn(t, s, 1000)
	_, err := c.Write(data(0, 3000))
	require.NoError(t, err)
	for range 3 {
		_, _, _, ok := s.next(t)
		require.True(t, ok)
	}
	var info tcp.Info
	assert.Zero(t, testing.AllocsPerRun(100, func() { info = c.Info() }))
	assert.Equal(t, "loss-probe", info.Timer) // in the RTO's place (tlp.go)
}
