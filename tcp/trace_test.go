package tcp_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// tracer records the events of Config.Trace.
type tracer struct{ events []tcp.Event }

func (r *tracer) trace(e tcp.Event) { r.events = append(r.events, e) }

// take returns the events of the kinds given recorded since the last
// take, and forgets all.
func (r *tracer) take(kinds ...tcp.EventKind) []tcp.Event {
	var out []tcp.Event
	for _, e := range r.events {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e)
			}
		}
	}
	r.events = nil
	return out
}

// traced makes a stack of cfg whose trace r records.
func traced(t *testing.T, cfg tcp.Config) (*stack, *tracer) {
	r := &tracer{}
	cfg.Trace = r.trace
	return newStack(t, cfg), r
}

func state(local, remote netip.AddrPort, from, to tcp.State) tcp.Event {
	return tcp.Event{Kind: tcp.EventState, Local: local, Remote: remote, From: from, To: to}
}

// A passive connection's whole life, TestPassiveClose's script: each
// state change once, in order, with the 4-tuple, and CurrEstab counting
// the connection while ESTABLISHED or CLOSE-WAIT. The FIN's
// retransmission on the RTO comes with the timer's firing and the RTO
// as its cause.
func TestTraceStatesPassive(t *testing.T) {
	s, r := traced(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	l, rm := serverAddr, clientAddr
	assert.Equal(t, []tcp.Event{state(l, rm, tcp.Closed, tcp.SynReceived), state(l, rm, tcp.SynReceived, tcp.Established)},
		r.take(tcp.EventState))
	assert.Equal(t, uint64(1), s.tb.Stats().CurrEstab)

	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2, win: fullWin})
	assert.Equal(t, []tcp.Event{state(l, rm, tcp.Established, tcp.CloseWait)}, r.take(tcp.EventState))
	assert.Equal(t, uint64(1), s.tb.Stats().CurrEstab)

	require.NoError(t, c.Close())
	assert.Equal(t, []tcp.Event{state(l, rm, tcp.CloseWait, tcp.LastAck)}, r.take(tcp.EventState))
	assert.Zero(t, s.tb.Stats().CurrEstab)
	fin := seg{flags: "F.", seq: iss + 1, ack: peerISN + 2, win: fullWin}
	p.expect(t, fin)
	s.advanceToDeadline(t)
	p.expect(t, fin)
	assert.Equal(t, []tcp.Event{
		{Kind: tcp.EventTLP, Local: l, Remote: rm},
		{Kind: tcp.EventRetransmit, Local: l, Remote: rm, Cause: tcp.CauseTLP, Seq: tcp.Seq(iss + 1)},
	}, r.take(tcp.EventRTO, tcp.EventTLP, tcp.EventRetransmit))
	p.send(t, seg{flags: ".", seq: peerISN + 2, ack: iss + 2, win: 512})
	assert.Equal(t, []tcp.Event{state(l, rm, tcp.LastAck, tcp.Closed)}, r.take(tcp.EventState))
	s.expectEmpty(t)
}

// An active connection's life: SYN-SENT, a lost SYN resent on the RTO
// (cause SYN), ESTABLISHED, then the active close through FIN-WAIT-1,
// FIN-WAIT-2 and TIME-WAIT to CLOSED after 2×MSL.
func TestTraceStatesActive(t *testing.T) {
	s, r := traced(t, tcp.Config{NoTimestamps: true, NoSACK: true})
	p, c, iss := dialSYN(t, s)
	l, rm := c.LocalAddr(), peerServer
	s.advanceToDeadline(t)
	p.expect(t, p.syn(iss))
	assert.Equal(t, []tcp.Event{
		state(l, rm, tcp.Closed, tcp.SynSent),
		{Kind: tcp.EventRTO, Local: l, Remote: rm},
		{Kind: tcp.EventRetransmit, Local: l, Remote: rm, Cause: tcp.CauseSYN, Seq: tcp.Seq(iss)},
	}, r.take(tcp.EventState, tcp.EventRTO, tcp.EventRetransmit))

	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460, ws: wscale(peerShift)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: uint16(s.rcvCap() >> s.shift())})
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: uint16(s.rcvCap() >> s.shift())})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2, win: 512})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 2, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: (131072 - 1) >> ourShift})
	s.advanceToDeadline(t) // 2×MSL
	assert.Equal(t, []tcp.Event{
		state(l, rm, tcp.SynSent, tcp.Established),
		state(l, rm, tcp.Established, tcp.FinWait1),
		state(l, rm, tcp.FinWait1, tcp.FinWait2),
		state(l, rm, tcp.FinWait2, tcp.TimeWait),
		state(l, rm, tcp.TimeWait, tcp.Closed),
	}, r.take(tcp.EventState))
	s.expectEmpty(t)
}

// The tail loss probe's firing and its retransmission of the last
// segment (TestTLPRepairsLostLastSegment's script), then, the probe lost
// too, the RTO's firing and its retransmission (TestTLPThenRTO's).
func TestTraceTLPThenRTO(t *testing.T) {
	s, r := traced(t, tcp.Config{CongestionControl: tcp.CongestionReno, NoSACK: true})
	p, c, iss := sackConn(t, s, 1000, false, false, false)
	r.take()
	probeTail(t, s, p, c, iss)
	l, rm := serverAddr, clientAddr
	last := tcp.Seq(iss + 1 + 9000)
	assert.Equal(t, []tcp.Event{
		{Kind: tcp.EventTLP, Local: l, Remote: rm},
		{Kind: tcp.EventRetransmit, Local: l, Remote: rm, Cause: tcp.CauseTLP, Seq: last, Len: 1000},
	}, r.take(tcp.EventTLP, tcp.EventRTO, tcp.EventRetransmit))
	s.fireAt(t, 200*ms)
	p.expect(t, segOut(iss, 9, "P."))
	assert.Equal(t, []tcp.Event{
		{Kind: tcp.EventRTO, Local: l, Remote: rm},
		{Kind: tcp.EventRetransmit, Local: l, Remote: rm, Cause: tcp.CauseRTO, Seq: last, Len: 1000},
	}, r.take(tcp.EventTLP, tcp.EventRTO, tcp.EventRetransmit))
}

// Three duplicate ACKs without SACK: a fast retransmission
// (TestSACKFallbackNewReno's script).
func TestTraceFastRetransmit(t *testing.T) {
	s, r := traced(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := sackConn(t, s, 1000, true, false, false)
	_, err := c.Write(data(0, 10*1000))
	require.NoError(t, err)
	for i := range 10 {
		expectSeg(t, p, iss, i, 10)
	}
	s.advance(10 * ms)
	for range 4 { // a window update, then three duplicates
		sackSegs(t, p, iss, 0)
	}
	expectSeg(t, p, iss, 0, 10)
	assert.Equal(t, []tcp.Event{
		{Kind: tcp.EventRetransmit, Local: c.LocalAddr(), Remote: peerServer, Cause: tcp.CauseFast, Seq: tcp.Seq(iss + 1), Len: 1000},
	}, r.take(tcp.EventRetransmit, tcp.EventRTO, tcp.EventTLP))
}

// With SACK, three SACKed segments make RACK mark the two before them
// lost: the first goes at once, by cause RACK
// (TestSACKRecoveryThreeSACKed's script).
func TestTraceRACKRetransmit(t *testing.T) {
	s, r := traced(t, tcp.Config{CongestionControl: tcp.CongestionReno})
	p, c, iss := sackConn(t, s, 1000, true, true, false)
	_, err := c.Write(data(0, 30*1000))
	require.NoError(t, err)
	for i := range 10 {
		expectSeg(t, p, iss, i, 30)
	}
	s.advance(10 * ms)
	sackSegs(t, p, iss, 0, [2]int{2, 3})
	expectSeg(t, p, iss, 10, 30)
	sackSegs(t, p, iss, 0, [2]int{2, 4})
	expectSeg(t, p, iss, 11, 30)
	sackSegs(t, p, iss, 0, [2]int{2, 5})
	expectSeg(t, p, iss, 0, 30)
	s.expectNothing(t)
	assert.Equal(t, []tcp.Event{
		{Kind: tcp.EventRetransmit, Local: c.LocalAddr(), Remote: peerServer, Cause: tcp.CauseRACK, Seq: tcp.Seq(iss + 1), Len: 1000},
	}, r.take(tcp.EventRetransmit, tcp.EventRTO, tcp.EventTLP))
}

// Drops by reason, each with the counter that counts it: a segment too
// short for its header, a bad checksum, a port no one listens on, a
// SYN,FIN to a listener, a segment outside the window.
func TestTraceDrops(t *testing.T) {
	s, r := traced(t, tcp.Config{})
	p, _, iss := serverConn(t, s, 1460)
	l, rm := serverAddr, clientAddr
	r.take()
	drop := func(reason tcp.DropReason, local, remote netip.AddrPort) []tcp.Event {
		return []tcp.Event{{Kind: tcp.EventDrop, Local: local, Remote: remote, Reason: reason}}
	}

	s.tb.Input(s.now, remoteAddr, localAddr, make([]byte, 10))
	assert.Equal(t, drop(tcp.DropMalformed, netip.AddrPortFrom(localAddr, 0), netip.AddrPortFrom(remoteAddr, 0)), r.take(tcp.EventDrop))

	b := p.encode(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512})
	b[16]++ // the checksum
	s.tb.Input(s.now, remoteAddr, localAddr, b)
	assert.Equal(t, drop(tcp.DropChecksum, l, rm), r.take(tcp.EventDrop))

	closed := s.peer(netip.AddrPortFrom(localAddr, 9), clientAddr)
	closed.send(t, seg{flags: "S", seq: peerISN, win: 65535})
	closed.expect(t, seg{flags: "R.", ack: peerISN + 1})
	assert.Equal(t, drop(tcp.DropNoSocket, closed.local, rm), r.take(tcp.EventDrop))

	other := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	other.send(t, seg{flags: "SF", seq: peerISN, win: 65535})
	assert.Equal(t, drop(tcp.DropFlags, l, other.remote), r.take(tcp.EventDrop))

	p.send(t, seg{flags: ".", seq: peerISN + 1 + 1<<20, ack: iss + 1, win: 512, payload: []byte("x")})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	assert.Equal(t, drop(tcp.DropSequence, l, rm), r.take(tcp.EventDrop))
	s.expectNothing(t)

	st := s.tb.Stats()
	assert.Equal(t, []uint64{2, 1, 1}, []uint64{st.InErrs, st.InCsumErrors, st.FlagDrops})
}
