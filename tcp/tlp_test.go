package tcp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// The tail loss probe's scripts (RFC 8985 7) run on a passive connection
// whose handshake gave one 10 ms RTT sample: SRTT 10 ms, RTTVAR 5 ms, the
// RTO at its 200 ms floor; MSS 1000, no timestamps, Reno for round
// numbers.

// tlpConn opens that connection, SACK-permitted if sack.
func tlpConn(t *testing.T, sack bool) (*stack, *peer, *tcp.Conn, uint32) {
	t.Helper()
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno, NoSACK: !sack})
	p, c, iss := sackConn(t, s, 1000, false, sack, false)
	return s, p, c, iss
}

// segOut is our data segment i (1000 bytes from stream offset 1000*i).
func segOut(iss uint32, i int, flags string) seg {
	return seg{flags: flags, seq: iss + 1 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)}
}

// ackOf is the peer's ACK of our first n segments, with sack blocks.
func ackOf(iss uint32, n int, sack ...wire.SACKBlock) seg {
	return seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1000*n), win: 512, sack: sack}
}

// sendTen writes ten segments (the initial window) and expects them.
func sendTen(t *testing.T, p *peer, c *tcp.Conn, iss uint32) {
	t.Helper()
	_, err := c.Write(data(0, 10*1000))
	require.NoError(t, err)
	for i := range 10 {
		p.expect(t, segOut(iss, i, flagsFor(i == 9)))
	}
	p.expectNothing(t)
}

// probeTail plays the case of most scripts here: of ten segments the
// last is lost. The probe timer runs from the flight (PTO = 2*SRTT + 2 ms
// with more than one segment out), restarts with the ACK of the other
// nine (one segment out: 2*SRTT + max(40 ms, SRTT) = 60 ms, well before
// the RTO's 200), and fires at exactly that time: the last segment goes
// again.
func probeTail(t *testing.T, s *stack, p *peer, c *tcp.Conn, iss uint32) {
	t.Helper()
	sendTen(t, p, c, iss)
	s.expectDeadline(t, s.now+22*ms)
	s.advance(10 * ms)
	p.send(t, ackOf(iss, 9))
	s.expectNothing(t)
	s.fireAt(t, 60*ms)
	p.expect(t, segOut(iss, 9, "P."))
	s.expectNothing(t)
}

// fireAt asserts that the next timer runs in d and that nothing goes
// before it, and moves time to it.
func (s *stack) fireAt(t *testing.T, d time.Duration) {
	t.Helper()
	s.expectDeadline(t, s.now+d)
	s.advance(d - 1)
	s.expectNothing(t)
	s.advance(1)
}

// nextFlight writes segments 10 and 11 after the ten of sendTen, expects
// them with the RTO alone running, due in rto, and sends the peer's ACK
// of them 10 ms later.
func nextFlight(t *testing.T, s *stack, p *peer, c *tcp.Conn, iss uint32, rto time.Duration) {
	t.Helper()
	_, err := c.Write(data(10000, 2000))
	require.NoError(t, err)
	p.expect(t, segOut(iss, 10, "."))
	p.expect(t, segOut(iss, 11, "P."))
	s.expectDeadline(t, s.now+rto)
	s.advance(10 * ms)
	p.send(t, ackOf(iss, 12))
}

// The last of ten segments is lost, and the probe resends it at the
// PTO (probeTail); the RTO is re-armed from the probe. The probe's
// ACK alone decides nothing (it might be the original's, with the
// probe's D-SACK or duplicate ACK to come); the next ACK past it, with
// neither seen, shows the probe repaired a loss: the window is reduced,
// once (Reno: half the flight the segment was lost in, 10 segments).
// With SACK and without.
func TestTLPRepairsLostLastSegment(t *testing.T) {
	for _, sack := range []bool{false, true} {
		t.Run(fmt.Sprintf("sack=%v", sack), func(t *testing.T) {
			s, p, c, iss := tlpConn(t, sack)
			probeTail(t, s, p, c, iss)
			assertWindow(t, c, 19000, 1<<32-1)
			s.expectDeadline(t, s.now+200*ms)
			st := c.Stats()
			assert.Equal(t, uint64(1), st.TLPProbes)
			assert.Equal(t, []uint64{1, 1, 0, 0}, []uint64{st.Retransmits, st.TLPRetransmits, st.FastRetransmits, st.RTORetransmits})
			assert.Zero(t, st.Timeouts)
			assert.Equal(t, uint64(1), s.tb.Stats().TCPLossProbes)

			s.advance(10 * ms)
			p.send(t, ackOf(iss, 10))
			assertWindow(t, c, 20000, 1<<32-1) // undecided: slow start goes on
			assert.Zero(t, s.tb.Timers())

			// No second probe while the first is undecided: the RTO alone.
			nextFlight(t, s, p, c, iss, 200*ms)
			assertWindow(t, c, 5000, 5000)
			assert.Equal(t, uint64(1), c.Stats().TLPRecoveries)
			assert.Equal(t, uint64(1), s.tb.Stats().TCPLossProbeRecovery)

			// The episode is over: later ACKs grow the window again.
			_, err := c.Write(data(12000, 1000))
			require.NoError(t, err)
			p.expect(t, segOut(iss, 12, "P."))
			s.advance(10 * ms)
			p.send(t, ackOf(iss, 13))
			assertWindow(t, c, 5000, 5000) // congestion avoidance: 1000 of 5000 acked
			assert.Equal(t, uint64(1), c.Stats().TLPRecoveries)
			s.expectNothing(t)
		})
	}
}

// With unsent data the peer's window takes, the probe is new data (RFC
// 8985 7.3), past a full congestion window: here no ACK of the initial
// window comes at all. Its ACK ends the episode without a reduction: a
// probe of new data repaired nothing.
func TestTLPProbesWithNewData(t *testing.T) {
	s, p, c, iss := tlpConn(t, false)
	_, err := c.Write(data(0, 12*1000))
	require.NoError(t, err)
	for i := range 10 {
		p.expect(t, segOut(iss, i, "."))
	}
	s.expectNothing(t)
	s.expectDeadline(t, s.now+22*ms)
	s.advance(22 * ms)
	p.expect(t, segOut(iss, 10, "."))
	s.expectNothing(t)
	s.expectDeadline(t, s.now+200*ms)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.TLPProbes)
	assert.Zero(t, st.Retransmits)
	assert.Zero(t, st.TLPRetransmits)

	s.advance(10 * ms)
	p.send(t, ackOf(iss, 11))
	p.expect(t, segOut(iss, 11, "P."))
	s.expectNothing(t)
	assertWindow(t, c, 21000, 1<<32-1)
	assert.Zero(t, c.Stats().TLPRecoveries)
}

// The probe is lost too: the RTO re-armed when the probe went fires
// exactly one RTO after it, resends from SND.UNA with the loss window,
// and backs off. The episode ends with the timeout's recovery, whose
// reduction is the only one: the ACKs after it grow the window.
func TestTLPThenRTO(t *testing.T) {
	s, p, c, iss := tlpConn(t, false)
	probeTail(t, s, p, c, iss)
	s.fireAt(t, 200*ms)
	p.expect(t, segOut(iss, 9, "P."))
	s.expectNothing(t)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.TLPProbes)
	assert.Equal(t, uint64(1), st.Timeouts)
	assertWindow(t, c, 1000, 2000) // RFC 5681 3.1: ssthresh from the one segment in flight
	s.expectDeadline(t, s.now+400*ms)

	s.advance(10 * ms)
	p.send(t, ackOf(iss, 10))
	assertWindow(t, c, 2000, 2000)
	assert.Zero(t, s.tb.Timers())
	nextFlight(t, s, p, c, iss, 400*ms) // still backed off: no sample since (Karn)
	assertWindow(t, c, 3000, 2000)      // congestion avoidance (RFC 3465 2.1)
	assert.Zero(t, c.Stats().TLPRecoveries)
}

// No probe while in recovery (RFC 8985 7.2): the first duplicate ACK
// gives the RTO its timer back, at its own time; in the fast recovery
// that follows, a partial ACK restarts the RTO and no probe, so a lost
// retransmission waits for the RTO.
func TestNoTLPInRecovery(t *testing.T) {
	s, p, c, iss := tlpConn(t, false)
	sendTen(t, p, c, iss) // segment 0 is lost, and segments 4 to 9
	rto := s.now + 200*ms
	s.expectDeadline(t, s.now+22*ms)
	s.advance(10 * ms)
	p.send(t, ackOf(iss, 0))
	s.expectDeadline(t, rto)
	p.send(t, ackOf(iss, 0))
	p.send(t, ackOf(iss, 0))
	p.expect(t, segOut(iss, 0, "."))
	s.expectNothing(t)
	_, _, rec := c.CongestionWindow()
	require.True(t, rec)
	s.expectDeadline(t, rto)

	s.advance(10 * ms)
	p.send(t, ackOf(iss, 4)) // partial: segment 4 goes at once (RFC 6582)
	p.expect(t, segOut(iss, 4, "."))
	s.expectNothing(t)
	s.expectDeadline(t, s.now+200*ms)
	s.advance(200 * ms)
	p.expect(t, segOut(iss, 4, "."))
	st := c.Stats()
	assert.Zero(t, st.TLPProbes)
	assert.Equal(t, uint64(1), st.Timeouts)
}

// One probe per episode: with timestamps the probe's ACK gives an RTT
// sample, but while its episode is undecided the next flight has the RTO
// alone.
func TestTLPOneProbePerEpisode(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := sackConn(t, s, 1000, false, false, true)
	const mss = 1000 - 12 // the timestamps take 12
	out := func(i int, flags string, ecr uint32) seg {
		return seg{flags: flags, seq: iss + 1 + uint32(mss*i), ack: peerISN + 1, win: fullWin, payload: data(mss*i, mss), ts: p.ourTS(ecr)}
	}
	ack := func(n int, tsval uint32, ecr uint32) seg {
		return seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(mss*n), win: 512, ts: ts(tsval, ecr)}
	}
	_, err := c.Write(data(0, 3*mss))
	require.NoError(t, err)
	sent := p.tsval()
	for i := range 3 {
		p.expect(t, out(i, flagsFor(i == 2), peerTS+10))
	}
	s.advance(10 * ms)
	p.send(t, ack(2, peerTS+11, sent))
	s.expectDeadline(t, s.now+60*ms)
	s.advance(60 * ms)
	probe := p.tsval()
	p.expect(t, out(2, "P.", peerTS+11))
	assert.Equal(t, uint64(1), c.Stats().TLPProbes)
	s.advance(10 * ms)
	p.send(t, ack(3, peerTS+12, probe))

	_, err = c.Write(data(3*mss, 2*mss))
	require.NoError(t, err)
	p.expect(t, out(3, ".", peerTS+12))
	p.expect(t, out(4, "P.", peerTS+12))
	s.expectDeadline(t, s.now+200*ms)
}

// The probe was needless: the original's ACK was only late, and the
// peer reports the probe's copy as a duplicate, by a D-SACK with SACK
// (RFC 2883) and by a duplicate ACK without. The episode ends with no
// reduction, and none on the ACK past the probe either (the two
// segments it acknowledges of a 20-segment window are too few to grow
// it: congestion window validation, RFC 7661).
func TestTLPNeedlessProbeNoReduction(t *testing.T) {
	for _, sack := range []bool{false, true} {
		t.Run(fmt.Sprintf("sack=%v", sack), func(t *testing.T) {
			s, p, c, iss := tlpConn(t, sack)
			probeTail(t, s, p, c, iss)
			s.advance(5 * ms)
			p.send(t, ackOf(iss, 10)) // the original's, late
			s.advance(5 * ms)
			dup := ackOf(iss, 10)
			if sack {
				dup.sack = []wire.SACKBlock{{Left: iss + 9001, Right: iss + 10001}}
			}
			p.send(t, dup)
			s.expectNothing(t)
			assertWindow(t, c, 20000, 1<<32-1)

			// No RTT sample came since the probe (its ACKs cover only
			// what was resent, and there are no timestamps): no probe
			// timer, the PTO would be a guess (RFC 8985 7.3).
			nextFlight(t, s, p, c, iss, 200*ms)
			assertWindow(t, c, 20000, 1<<32-1)
			st := c.Stats()
			assert.Equal(t, uint64(1), st.TLPProbes)
			assert.Zero(t, st.TLPRecoveries)
			if sack {
				assert.Equal(t, uint64(1), st.DSACKsRecv)
			}
		})
	}
}

// The probe's path allocates nothing: a flight of two segments, the ACK
// of the first, the probe timer firing and the last segment resent, its
// ACK; the next flight's ACK decides the episode (a repair).
func TestTLPNoAllocs(t *testing.T) {
	t.Run("trace=off", func(t *testing.T) { tlpNoAllocs(t, nil) })
	// A trace takes its events by value: a probe, its retransmission
	// and no allocation.
	events := map[tcp.EventKind]int{}
	t.Run("trace=on", func(t *testing.T) { tlpNoAllocs(t, func(e tcp.Event) { events[e.Kind]++ }) })
	assert.Equal(t, map[tcp.EventKind]int{tcp.EventState: 2, tcp.EventTLP: 102, tcp.EventRetransmit: 102}, events)
}

// tlpNoAllocs runs TestTLPNoAllocs with trace as Config.Trace.
func tlpNoAllocs(t *testing.T, trace func(tcp.Event)) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno, Trace: trace})
	p, c, iss := sackConn(t, s, 1000, false, true, false)
	next := iss + 1
	payload := data(0, 2000)
	out := make([]byte, bufLen)
	ack := make([]byte, wire.TCPMinLen)
	input := func(n uint32) {
		f := wire.TCPFields{SrcPort: p.remote.Port(), DstPort: p.local.Port(), Seq: peerISN + 1, Ack: n,
			Flags: wire.TCPFlagACK, Window: 512, Options: wire.TCPOptions{WindowScale: -1}}
		f.Encode(ack, 0, p.remote.Addr(), p.local.Addr())
		s.tb.Input(s.now, p.remote.Addr(), p.local.Addr(), ack)
	}
	drain := func() (n int) {
		for ; ; n++ {
			if _, ok := s.tb.Output(s.now, out); !ok {
				return n
			}
		}
	}
	round := func() {
		if _, err := c.Write(payload); err != nil || drain() != 2 {
			panic("the flight did not go")
		}
		s.now += 10 * ms
		input(next + 1000)
		at, _ := s.tb.Deadline()
		s.now = at
		s.tb.RunTimers(s.now)
		if drain() != 1 {
			panic("no probe")
		}
		s.now += 10 * ms
		input(next + 2000)
		next += 2000
	}
	round()
	assert.Zero(t, testing.AllocsPerRun(100, round))
	st := c.Stats()
	assert.Equal(t, uint64(102), st.TLPProbes)
	assert.Equal(t, uint64(101), st.TLPRecoveries)
	assert.Zero(t, st.Timeouts)
}

// The reorder timer takes the probe timer's place, and gives the RTO
// back its own (timer.go: one timer, the RTO's deadline held in rtoAt).
// Ten segments go at t0 = 10 ms: the probe timer is due at t0 + 22 ms,
// the RTO at t0 + 200 ms. 10 ms later the peer acknowledges segment 0
// and SACKs segment 2: the ACK restarts the RTO, behind the probe timer,
// for t0 + 210 ms; segment 1, sent with segment 2, is not yet overdue by
// RACK (RACK.rtt 10 ms plus a quarter of the minimum RTT), so the reorder
// timer is armed for t0 + 12.5 ms and the probe is dropped: RACK has the
// loss in hand. The reorder timer marks segment 1 lost and it is resent
// at once (the recovery's first retransmission), with no probe; the
// RTO is the timer again, for exactly the deadline the ACK gave it, and
// fires then.
func TestTLPReorderTimerReplacesProbe(t *testing.T) {
	s, p, c, iss := tlpConn(t, true)
	t0 := s.now
	sendTen(t, p, c, iss)
	s.expectDeadline(t, t0+22*ms)

	s.advance(10 * ms)
	p.send(t, ackOf(iss, 1, wire.SACKBlock{Left: iss + 1 + 2000, Right: iss + 1 + 3000}))
	s.expectNothing(t)
	s.expectDeadline(t, t0+12500*time.Microsecond)
	rtt, reo := c.RACKRTT()
	require.Equal(t, 10*ms, rtt)
	require.Equal(t, 2500*time.Microsecond, reo)
	_, _, rec := c.CongestionWindow()
	require.False(t, rec, "one SACKed segment: RACK waits")

	s.fireAt(t, 2500*time.Microsecond)
	p.expect(t, segOut(iss, 1, "."))
	s.expectNothing(t)
	_, _, rec = c.CongestionWindow()
	assert.True(t, rec, "the reorder timer began the recovery")
	st := c.Stats()
	assert.Equal(t, uint64(1), st.RACKLost)
	assert.Equal(t, uint64(1), st.FastRetransmits)
	assert.Zero(t, st.TLPProbes)
	s.expectDeadline(t, t0+210*ms)

	// Nothing more comes: the RTO fires at its time, not the probe, and
	// resends the hole (what the peer SACKed is not resent).
	s.fireAt(t, t0+210*ms-s.now)
	p.expect(t, segOut(iss, 1, "."))
	st = c.Stats()
	assert.Equal(t, uint64(1), st.Timeouts)
	assert.Zero(t, st.TLPProbes)
}
