package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// expectFlight expects the segments of MSS 1460 numbered from..to-1 of
// a write, counted from the first byte after the handshake.
func expectFlight(t *testing.T, p *peer, iss uint32, from, to int, last int) {
	t.Helper()
	for i := from; i < to; i++ {
		p.expect(t, seg{flags: flagsFor(i == last), seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
	}
}

// ackTo sends the peer's ACK of the first n segments.
func ackTo(t *testing.T, p *peer, iss uint32, n int) {
	t.Helper()
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1460*n), win: 1024})
}

// The first flight is RFC 6928's initial window, ten segments of 1460
// (14600 bytes), though the peer offers far more; each ACK then grows
// cwnd by what it acknowledged (slow start, RFC 5681 3.1, by bytes as
// RFC 3465, with no per-ACK cap as Linux), so an ACK of one segment lets
// two go and an ACK of four lets eight go.
func TestInitialWindowAndSlowStart(t *testing.T) {
	for _, cc := range []string{tcp.CongestionReno, tcp.CongestionCubic} {
		t.Run(cc, func(t *testing.T) {
			s := newStack(t, tcp.Config{CongestionControl: cc})
			p, c, iss := clientConn(t, s, 1460)
			assert.Equal(t, cc, c.CongestionControl())
			_, err := c.Write(data(0, 40*1460))
			require.NoError(t, err)
			expectFlight(t, p, iss, 0, 10, -1)
			s.expectNothing(t)
			assertWindow(t, c, 14600, 1<<32-1)

			ackTo(t, p, iss, 1)
			expectFlight(t, p, iss, 10, 12, -1)
			s.expectNothing(t)
			assertWindow(t, c, 11*1460, 1<<32-1)

			ackTo(t, p, iss, 5)
			expectFlight(t, p, iss, 12, 20, -1)
			s.expectNothing(t)
			assertWindow(t, c, 15*1460, 1<<32-1)
			st := c.Info()
			assert.Equal(t, uint32(15*1460), st.Cwnd)
			assert.Zero(t, st.Retransmits)
		})
	}
}

// The initial window is RFC 6928 2's min(10*MSS, max(2*MSS, 14600)):
// ten segments of 1000 or 536 (TestInitialWindowFormula has the rest).
func TestInitialWindowMSS(t *testing.T) {
	for _, tc := range []struct {
		mss  uint16
		cwnd uint32
	}{{1000, 10000}, {536, 5360}} {
		s := newStack(t, tcp.Config{})
		_, c, _ := clientConn(t, s, tc.mss)
		cwnd, _, _ := c.CongestionWindow()
		assert.Equal(t, tc.cwnd, cwnd, "MSS %d", tc.mss)
	}
}

// NewReno (RFC 5681 3.2, RFC 6582): the third duplicate ACK resends the
// lost segment and sets ssthresh = FlightSize/2, cwnd = ssthresh + 3*SMSS;
// further duplicates inflate cwnd by one SMSS each, which lets new data
// go; a partial ACK resends the next hole at once and deflates cwnd;
// the ACK of all that was out at the loss ends the recovery with
// cwnd = ssthresh.
func TestNewRenoFastRecovery(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := clientConn(t, s, 1460)
	_, err := c.Write(data(0, 10*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, 9)
	// Segments 1 and 4 are lost. The ACK of segment 0 grows cwnd to 11.
	ackTo(t, p, iss, 1)
	s.expectNothing(t)
	for range 2 { // segments 2 and 3
		ackTo(t, p, iss, 1)
	}
	s.expectNothing(t)
	ackTo(t, p, iss, 1) // segment 5: the third duplicate
	p.expect(t, seg{flags: ".", seq: iss + 1 + 1460, ack: peerISN + 1, win: fullWin, payload: data(1460, 1460)})
	s.expectNothing(t)
	const flight = 9 * 1460
	assertWindow(t, c, flight/2+3*1460, flight/2)
	_, _, rec := c.CongestionWindow()
	assert.True(t, rec, "in fast recovery")

	// Segments 6–9 each draw one more duplicate: cwnd 16790, and with
	// 13140 in flight two new segments may go.
	for range 4 {
		ackTo(t, p, iss, 1)
	}
	assertWindow(t, c, flight/2+7*1460, flight/2)
	_, err = c.Write(data(10*1460, 3*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 10, 12, -1)
	s.expectNothing(t)

	// The resent segment 1 fills the first hole: the ACK is partial (up
	// to the lost segment 4), and segment 4 goes at once. cwnd deflates by
	// the 3 segments acknowledged, less one SMSS back.
	// The 13870 window then has room for the last new segment.
	ackTo(t, p, iss, 4)
	p.expect(t, seg{flags: ".", seq: iss + 1 + 4*1460, ack: peerISN + 1, win: fullWin, payload: data(4*1460, 1460)})
	expectFlight(t, p, iss, 12, 13, 12)
	s.expectNothing(t)
	assertWindow(t, c, flight/2+5*1460, flight/2)

	// The ACK of everything sent before the loss, with segments 10–12
	// still out: recovery ends, cwnd = ssthresh (RFC 6582 3.2 step 6).
	ackTo(t, p, iss, 10)
	assertWindow(t, c, flight/2, flight/2)
	_, _, rec = c.CongestionWindow()
	assert.False(t, rec)
	st := c.Stats()
	assert.Equal(t, uint64(2), st.FastRetransmits)
	assert.Equal(t, uint64(2), st.Retransmits)
	assert.Zero(t, st.Timeouts)
	s.expectNothing(t)
}

// CUBIC (RFC 9438 4.6): the third duplicate ACK sets ssthresh to
// beta = 0.7 of cwnd, not half the flight; fast recovery is NewReno's.
func TestCubicLossWindow(t *testing.T) {
	s := newStack(t, tcp.Config{}) // CUBIC by default
	p, c, iss := clientConn(t, s, 1460)
	assert.Equal(t, tcp.CongestionCubic, c.CongestionControl())
	_, err := c.Write(data(0, 10*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, 9)
	for range 4 { // the first updates the window: no duplicate
		ackTo(t, p, iss, 0)
	}
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	const ssthresh = 14600 * 7 / 10
	assertWindow(t, c, ssthresh+3*1460, ssthresh)
	ackTo(t, p, iss, 10)
	assertWindow(t, c, ssthresh, ssthresh)
}

// A connection may change its algorithm (Linux's TCP_CONGESTION); a
// name we do not have is refused, and so is a Config naming one.
func TestSetCongestionControl(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, c, _ := clientConn(t, s, 1460)
	require.NoError(t, c.SetCongestionControl(tcp.CongestionReno))
	assert.Equal(t, tcp.CongestionReno, c.CongestionControl())
	assert.Error(t, c.SetCongestionControl("bbr"))
	assert.Equal(t, tcp.CongestionReno, c.CongestionControl())
	_, err := tcp.New(tcp.Config{Addrs: s.cfg.Addrs, CongestionControl: "vegas"})
	assert.Error(t, err)
}

// A lost SYN makes the initial window one segment (RFC 5681 3.1, RFC
// 6928 2): the path just lost a packet.
func TestInitialWindowAfterSYNLoss(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	s.advanceToDeadline(t)
	p.expect(t, p.syn(iss))
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460, ws: wscale(peerShift)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	_, err := c.Write(data(0, 3*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 1, -1)
	s.expectNothing(t)
}

// After an idle spell longer than the RTO the window restarts at
// min(IW, cwnd) (RFC 5681 4.1, Linux's tcp_slow_start_after_idle); after
// a shorter one it stays.
func TestRestartAfterIdle(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	_, err := c.Write(data(0, 10*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, 9)
	ackTo(t, p, iss, 10)
	assertWindow(t, c, 20*1460, 1<<32-1)

	s.advance(100 * ms) // shorter than the RTO (its minimum is 200 ms)
	_, err = c.Write(data(10*1460, 20*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 10, 30, 29)
	ackTo(t, p, iss, 30)
	assertWindow(t, c, 40*1460, 1<<32-1)

	s.advance(5 * time.Second)
	_, err = c.Write(data(30*1460, 20*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 30, 40, -1)
	s.expectNothing(t)
	assertWindow(t, c, 14600, 1<<32-1)
}

// Limited transmit (RFC 3042): the first and second duplicate ACKs each
// let one new segment go past cwnd, the third starts fast retransmit
// with the flight they made.
func TestLimitedTransmit(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := clientConn(t, s, 1460)
	_, err := c.Write(data(0, 14*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, -1)
	ackTo(t, p, iss, 0) // a window update: no duplicate
	s.expectNothing(t)
	ackTo(t, p, iss, 0)
	expectFlight(t, p, iss, 10, 11, -1)
	s.expectNothing(t)
	ackTo(t, p, iss, 0)
	expectFlight(t, p, iss, 11, 12, -1)
	s.expectNothing(t)
	ackTo(t, p, iss, 0)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	s.expectNothing(t)
	assertWindow(t, c, 6*1460+3*1460, 6*1460)
}

// The Eifel detection (RFC 3522): when the first ACK of new data after a
// fast retransmit echoes the original's TSval, not the retransmission's,
// the segment was reordered, not lost, and the reduction is undone; an
// echo of the retransmission's keeps it.
func TestUndoByTimestamps(t *testing.T) {
	for _, spurious := range []bool{true, false} {
		s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
		p, c, iss := clientConnTS(t, s, 1460)
		const mss = 1460 - 12
		_, err := c.Write(data(0, 10*mss))
		require.NoError(t, err)
		orig := p.tsval()
		for i := range 10 {
			p.expect(t, seg{flags: flagsFor(i == 9), seq: iss + 1 + uint32(mss*i), ack: peerISN + 1, win: fullWin, payload: data(mss*i, mss), ts: ts(orig, peerTS)})
		}
		s.advance(5 * ms)
		for range 4 { // a window update, then three duplicates
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 1024, ts: ts(peerTS+5, orig)})
		}
		resent := p.tsval()
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, mss), ts: ts(resent, peerTS+5)})
		assertWindow(t, c, 5*mss+3*mss, 5*mss)
		echo := resent
		if spurious {
			echo = orig
		}
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 10*mss, win: 1024, ts: ts(peerTS+6, echo)})
		if spurious {
			// The window of before, and slow start on for this ACK's
			// ten segments.
			assertWindow(t, c, 20*mss, 1<<32-1)
			assert.Equal(t, uint64(1), c.Stats().UndoneReductions)
			assert.Equal(t, uint64(1), c.Stats().ReorderSeen, "the original came after three segments above it")
		} else {
			assertWindow(t, c, 5*mss, 5*mss)
			assert.Zero(t, c.Stats().UndoneReductions)
			assert.Zero(t, c.Stats().ReorderSeen)
		}
		_, _, rec := c.CongestionWindow()
		assert.False(t, rec)
	}
}

// A D-SACK for every retransmission of a recovery (RFC 3708) undoes its
// reduction, even after the recovery ended.
func TestUndoByDSACK(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := sackConn(t, s, 1460, true, true, false)
	_, err := c.Write(data(0, 10*1460))
	require.NoError(t, err)
	expectFlight(t, p, iss, 0, 10, 9)
	for i := range 4 { // a window update, then three duplicates
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 1024,
			sack: []wire.SACKBlock{{Left: iss + 1461, Right: iss + 1461 + uint32(1460*(i+1))}}})
	}
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	ackTo(t, p, iss, 10) // the original arrived late: a full ACK
	assertWindow(t, c, 5*1460, 5*1460)
	assert.Zero(t, c.Stats().UndoneReductions)
	// Then the retransmission: the peer reports it as a duplicate.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 14600, win: 1024, sack: []wire.SACKBlock{{Left: iss + 1, Right: iss + 1461}}})
	assertWindow(t, c, 14600, 1<<32-1)
	assert.Equal(t, uint64(1), c.Stats().UndoneReductions)
	assert.Equal(t, uint64(1), c.Stats().DSACKsRecv)
}

// Congestion window validation (RFC 7661): an app that writes a few
// segments per round trip, each acknowledged, keeps cwnd at no more than
// twice what it has in flight however many ACKs come. Three segments of
// a ten-segment window never validate it (less than half in flight):
// cwnd stays the initial window. Eight do, until cwnd reaches sixteen.
func TestCwndValidationAppLimited(t *testing.T) {
	for _, cc := range []string{tcp.CongestionReno, tcp.CongestionCubic} {
		for _, tc := range []struct{ perRound, cwnd int }{{3, 10}, {8, 16}} {
			s := newStack(t, tcp.Config{CongestionControl: cc})
			p, c, iss := clientConn(t, s, 1460)
			sent := 0
			for range 30 {
				_, err := c.Write(data(1460*sent, 1460*tc.perRound))
				require.NoError(t, err)
				expectFlight(t, p, iss, sent, sent+tc.perRound, sent+tc.perRound-1)
				s.expectNothing(t)
				for i := range tc.perRound {
					s.advance(ms)
					ackTo(t, p, iss, sent+i+1)
				}
				sent += tc.perRound
			}
			assertWindow(t, c, uint32(tc.cwnd*1460), 1<<32-1)
		}
	}
}
