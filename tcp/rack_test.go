package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// SACK-based loss recovery (rack.go, recovery.go): RACK's loss marking,
// RFC 6675's pipe and NextSeg, PRR's sending, against a scripted peer that
// speaks SACK. Segments are of 1000 bytes (the peer's MSS, no
// timestamps), the first flight (10 segments) leaves at 100 ms and the
// peer's ACKs come 10 ms later, so RACK.rtt and the minimum RTT are 10 ms
// and the reordering window a quarter of it.

// rackFlight opens a SACK connection with cc, writes n segments and
// expects the first flight of 10.
func rackFlight(t *testing.T, cc string, n int) (*stack, *peer, *tcp.Conn, uint32) {
	t.Helper()
	s := newStack(t, tcp.Config{CongestionControl: cc})
	p, c, iss := sackConn(t, s, 1000, true, true, false)
	_, err := c.Write(data(0, n*1000))
	require.NoError(t, err)
	for i := range 10 {
		expectSeg(t, p, iss, i, n)
	}
	s.expectNothing(t)
	return s, p, c, iss
}

// expectSeg expects segment i of a write of n: 1000 bytes, PSH on the last.
func expectSeg(t *testing.T, p *peer, iss uint32, i, n int) {
	t.Helper()
	p.expect(t, seg{flags: flagsFor(i == n-1), seq: iss + 1 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)})
}

// sackSegs sends the peer's ACK of the first ack segments, SACKing the
// segment ranges [from, to) of blocks.
func sackSegs(t *testing.T, p *peer, iss uint32, ack int, blocks ...[2]int) {
	t.Helper()
	sg := seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1000*ack), win: 1024}
	for _, b := range blocks {
		sg.sack = append(sg.sack, wire.SACKBlock{Left: iss + 1 + uint32(1000*b[0]), Right: iss + 1 + uint32(1000*b[1])})
	}
	p.send(t, sg)
}

// expectPipe asserts RFC 6675's pipe and the window.
func expectPipe(t *testing.T, c *tcp.Conn, pipe, cwnd, ssthresh uint32) {
	t.Helper()
	assert.Equal(t, pipe, c.Pipe(), "pipe")
	assertWindow(t, c, cwnd, ssthresh)
}

// RACK's time rule (RFC 8985 6.2): one SACKed segment is fewer than
// DupThresh, so the segment before it is lost only once RACK.rtt plus
// the reordering window (10 ms / 4) has passed since it went out; the
// reorder timer fires then, recovery begins, and PRR lets the lost
// segment go at once (its first retransmission) though pipe is above
// ssthresh. The SACKed segment left pipe, which let a new one go.
func TestRACKTimeRule(t *testing.T) {
	s, p, c, iss := rackFlight(t, tcp.CongestionReno, 20)
	s.advance(10 * ms)
	sackSegs(t, p, iss, 0, [2]int{1, 2})
	expectSeg(t, p, iss, 10, 20)
	s.expectNothing(t)
	expectPipe(t, c, 10000, 10000, 1<<32-1)
	s.expectDeadline(t, 112500*time.Microsecond)
	rtt, reo := c.RACKRTT()
	assert.Equal(t, 10*ms, rtt)
	assert.Equal(t, 2500*time.Microsecond, reo)

	s.advance(2500 * time.Microsecond)
	expectSeg(t, p, iss, 0, 20)
	s.expectNothing(t)
	// Reno: ssthresh = FlightSize/2 of 11 segments; pipe: 11 out, 1
	// SACKed, 1 lost and resent.
	expectPipe(t, c, 10000, 10000, 5500)
	_, _, rec := c.CongestionWindow()
	assert.True(t, rec, "in recovery")
	st := c.Stats()
	assert.Equal(t, uint64(1), st.SACKRecoveries)
	assert.Equal(t, uint64(1), st.RACKLost)
	assert.Equal(t, uint64(1), st.FastRetransmits)
	assert.Equal(t, uint64(1), s.tb.Stats().SackRecovery)

	// The ACK of all that was out at the loss ends the recovery: cwnd =
	// ssthresh (RFC 6937), and the new data goes out.
	s.advance(10 * ms)
	sackSegs(t, p, iss, 11)
	expectPipe(t, c, 0, 5500, 5500)
	for i := 11; i < 16; i++ {
		expectSeg(t, p, iss, i, 20)
	}
	s.expectNothing(t)
	_, _, rec = c.CongestionWindow()
	assert.False(t, rec)
}

// Three SACKed segments (RFC 6675 5) enter recovery at once: with no
// reordering seen, RACK's window is zero from DupThresh SACKed segments
// on (RFC 8985 6.2 step 4). The holes go first, then new data, each ACK
// letting go what PRR says (RFC 6937, PRR-SSRB): while pipe is above
// ssthresh, sending follows delivery by ssthresh/RecoverFS; below it,
// it rebuilds pipe up to ssthresh.
func TestSACKRecoveryThreeSACKed(t *testing.T) {
	s, p, c, iss := rackFlight(t, tcp.CongestionReno, 30)
	// Segments 0 and 1 are lost. Each SACK of 2 and 3 lets a new segment
	// go: SACKed data leaves pipe (RFC 6675's limited transmit).
	s.advance(10 * ms)
	sackSegs(t, p, iss, 0, [2]int{2, 3})
	expectSeg(t, p, iss, 10, 30)
	expectPipe(t, c, 10000, 10000, 1<<32-1)
	sackSegs(t, p, iss, 0, [2]int{2, 4})
	expectSeg(t, p, iss, 11, 30)
	s.expectNothing(t)
	expectPipe(t, c, 10000, 10000, 1<<32-1)

	// The third: segments 0 and 1 are lost. Reno's ssthresh is half of
	// the 12 out (RecoverFS); pipe 12 - 3 SACKed - 2 lost = 7. PRR:
	// ceil(1 delivered * 6/12) = 1/2 segment, but the first
	// retransmission goes whatever (cwnd = pipe + 1).
	sackSegs(t, p, iss, 0, [2]int{2, 5})
	expectSeg(t, p, iss, 0, 30)
	s.expectNothing(t)
	expectPipe(t, c, 8000, 8000, 6000)
	assert.Equal(t, uint64(2), c.Stats().RACKLost)

	// Segment 5: pipe 7 > ssthresh 6, and ceil(2 * 6/12) - 1 sent = 0.
	sackSegs(t, p, iss, 0, [2]int{2, 6})
	s.expectNothing(t)
	expectPipe(t, c, 7000, 7000, 6000)
	// Segment 6: pipe 6, at ssthresh: SSRB allows ssthresh - pipe = 0.
	sackSegs(t, p, iss, 0, [2]int{2, 7})
	s.expectNothing(t)
	expectPipe(t, c, 6000, 6000, 6000)
	// Segment 7: pipe 5 below ssthresh: one segment, the other hole.
	sackSegs(t, p, iss, 0, [2]int{2, 8})
	expectSeg(t, p, iss, 1, 30)
	s.expectNothing(t)
	expectPipe(t, c, 6000, 6000, 6000)
	// Segments 8 and 9: one new segment each (the holes are resent).
	sackSegs(t, p, iss, 0, [2]int{2, 9})
	expectSeg(t, p, iss, 12, 30)
	s.expectNothing(t)
	sackSegs(t, p, iss, 0, [2]int{2, 10})
	expectSeg(t, p, iss, 13, 30)
	s.expectNothing(t)
	expectPipe(t, c, 6000, 6000, 6000)

	// Both resent segments arrive: the ACK covers 0–9, delivering 2
	// segments (8 SACKed ones leave the count, 10 are acknowledged);
	// pipe 4 (10–13) leaves room for min(ssthresh - pipe, delivered +
	// 1) = 2.
	sackSegs(t, p, iss, 10)
	expectSeg(t, p, iss, 14, 30)
	expectSeg(t, p, iss, 15, 30)
	s.expectNothing(t)
	expectPipe(t, c, 6000, 6000, 6000)
	st := c.Stats()
	assert.Equal(t, uint64(2), st.FastRetransmits)
	assert.Zero(t, st.Timeouts)
	_, _, rec := c.CongestionWindow()
	assert.True(t, rec, "recovery lasts until segment 11, SND.MAX at its start, is acknowledged")
	sackSegs(t, p, iss, 12)
	_, _, rec = c.CongestionWindow()
	assert.False(t, rec)
	assertWindow(t, c, 6000, 6000)
}

// With a peer that does not offer SACK, recovery is NewReno's (RFC
// 6582), though SACK is on in its config: three duplicate ACKs, cwnd =
// ssthresh + 3 segments, and pipe is all that is out.
func TestSACKFallbackNewReno(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := sackConn(t, s, 1000, true, false, false)
	_, err := c.Write(data(0, 10*1000))
	require.NoError(t, err)
	for i := range 10 {
		expectSeg(t, p, iss, i, 10)
	}
	s.advance(10 * ms)
	for range 4 { // a window update, then three duplicates
		sackSegs(t, p, iss, 0, [2]int{1, 2}) // blocks a non-SACK connection ignores
	}
	expectSeg(t, p, iss, 0, 10)
	s.expectNothing(t)
	expectPipe(t, c, 10000, 5000+3*1000, 5000)
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.RenoRecovery)
	assert.Zero(t, st.SackRecovery)
	assert.Zero(t, st.SACKBlocksRecv)
}

// After a retransmission timeout, what the peer SACKed is not resent
// (RFC 6675 5.1): every other segment is lost, and slow start from one
// segment resends them in order.
func TestSACKTimeoutSkipsSACKed(t *testing.T) {
	s, p, c, iss := rackFlight(t, tcp.CongestionReno, 10)
	// Only the last segment arrives; RACK takes the nine before it as
	// lost after 12.5 ms and the first is resent, and lost again.
	s.advance(10 * ms)
	sackSegs(t, p, iss, 0, [2]int{9, 10})
	s.advance(2500 * time.Microsecond)
	expectSeg(t, p, iss, 0, 10)
	s.expectNothing(t)
	// The timeout: 300 ms (SRTT 100 ms from the handshake) after the
	// first flight.
	s.expectDeadline(t, 400*ms)
	s.advance(400*ms - s.now)
	expectSeg(t, p, iss, 0, 10)
	s.expectNothing(t)
	expectPipe(t, c, 1000, 1000, 5000)
	// Slow start: each ACK lets twice what it acknowledged go.
	for _, step := range [][2]int{{1, 3}, {3, 7}, {7, 9}} {
		s.advance(10 * ms)
		sackSegs(t, p, iss, step[0], [2]int{9, 10})
		for i := step[0]; i < step[1]; i++ {
			expectSeg(t, p, iss, i, 10)
		}
		s.expectNothing(t)
	}
	s.advance(10 * ms)
	sackSegs(t, p, iss, 10)
	s.expectNothing(t)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Timeouts)
	assert.Equal(t, uint64(10), st.Retransmits, "segment 0 twice, 1–8 once, 9 never")
}

// Reordering is not taken for loss for long: the original of a segment
// resent after three SACKs arrives, the peer reports the copy in a
// D-SACK, and the reduction is undone (RFC 3708); the D-SACK of a
// retransmission shows reordering, so the reordering window no longer
// drops to zero on three SACKs, and the D-SACK round doubles it (RFC
// 8985 6.2 step 4): a later hole with three SACKs waits 5 ms.
func TestRACKReorderingUndo(t *testing.T) {
	s, p, c, iss := rackFlight(t, tcp.CongestionReno, 40)
	s.advance(10 * ms)
	for i := 2; i <= 3; i++ {
		sackSegs(t, p, iss, 0, [2]int{1, i})
		expectSeg(t, p, iss, 8+i, 40)
	}
	sackSegs(t, p, iss, 0, [2]int{1, 4})
	expectSeg(t, p, iss, 0, 40)
	s.expectNothing(t)
	_, ssthresh, rec := c.CongestionWindow()
	require.True(t, rec)
	require.Equal(t, uint32(6000), ssthresh)

	// The original segment 0 comes 1 ms late: the ACK covers the first
	// flight; then the copy, D-SACKed.
	s.advance(ms)
	sackSegs(t, p, iss, 10)
	sackSegs(t, p, iss, 10, [2]int{0, 1})
	st := c.Stats()
	assert.Equal(t, uint64(1), st.SpuriousRetransmits)
	assert.Equal(t, uint64(1), st.UndoneReductions)
	cwnd, ssthresh, rec := c.CongestionWindow()
	assert.False(t, rec)
	assert.Equal(t, uint32(1<<32-1), ssthresh, "the reduction undone")
	assert.Equal(t, uint32(10000), cwnd)
	_, reo := c.RACKRTT()
	assert.Equal(t, 5*ms, reo, "a quarter of the minimum RTT, doubled by the D-SACK")
	assert.Equal(t, uint64(1), s.tb.Stats().SACKReorder)

	// The restored window sends segments 12–19 at 111 ms. Three SACKs
	// above a new hole (segment 11, sent at 110 ms) come 10 ms later:
	// reordering was seen, so RACK waits out its window before it takes
	// segment 11 as lost: until 110 + 10 + 5 ms.
	for i := 12; i < 20; i++ {
		expectSeg(t, p, iss, i, 40)
	}
	s.expectNothing(t)
	s.advance(10 * ms)
	sackSegs(t, p, iss, 11, [2]int{12, 15})
	drain(t, p) // new data
	_, _, rec = c.CongestionWindow()
	assert.False(t, rec, "three SACKs, but reordering seen: RACK waits")
	s.expectDeadline(t, 125*ms)
	s.advance(4 * ms)
	expectSeg(t, p, iss, 11, 40)
	_, _, rec = c.CongestionWindow()
	assert.True(t, rec)
}

// drain takes what the table sends now.
func drain(t *testing.T, p *peer) {
	t.Helper()
	for {
		if _, _, _, ok := p.next(t); !ok {
			return
		}
	}
}
