package tcp_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// Segments that arrive in one batch are covered by one cumulative ACK;
// the peer's cumulative ACKs free the send buffer and restart the
// retransmission timer (RFC 6298 5.3).
func TestDataCumulativeACK(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := serverConn(t, s, 1000)

	for i := range 3 {
		p.send(t, seg{flags: ".", seq: peerISN + 1 + uint32(1000*i), ack: iss + 1, win: 512, payload: data(1000*i, 1000)})
	}
	// Window: 128 KiB less the 3000 bytes unread, scaled by 2^ourShift.
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 3001, win: (131072 - 3000) >> ourShift})
	s.expectNothing(t)
	r, ok := s.tb.NextReady()
	require.True(t, ok)
	assert.Same(t, c, r)
	assert.Equal(t, data(0, 3000), readAll(t, c))
	assert.Equal(t, uint64(3000), c.Stats().BytesReceived)

	_, err := c.Write(data(0, 3000))
	require.NoError(t, err)
	// Reading opened the window again: the data carries the update.
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 3001, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 3001, win: fullWin, payload: data(1000, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 2001, ack: peerISN + 3001, win: fullWin, payload: data(2000, 1000)})
	// RTO: one 10 ms sample from the handshake, clamped to 200 ms.
	s.expectDeadline(t, s.now+200*ms)

	s.advance(50 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 3001, ack: iss + 1001, win: 512})
	s.expectNothing(t)
	assert.Equal(t, 2000, c.Unacked())
	s.expectDeadline(t, s.now+200*ms)

	s.advance(50 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 3001, ack: iss + 3001, win: 512})
	s.expectNothing(t)
	assert.Equal(t, 0, c.Unacked())
	assert.Equal(t, uint64(3000), c.Stats().BytesAcked)
	assert.Zero(t, s.tb.Timers())
}

// Out-of-order segments are kept; each draws an immediate ACK that stays
// at the hole (RFC 5681 4.2), and the segment that fills the hole moves
// the ACK past everything kept.
func TestOutOfOrderReassembly(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000)

	p.send(t, seg{flags: ".", seq: peerISN + 1001, ack: iss + 1, win: 512, payload: data(1000, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 3001, ack: iss + 1, win: 512, payload: data(3000, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t)
	assert.Zero(t, c.Readable(), "nothing in order yet")

	// The first hole fills: the ACK jumps to the second.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2001, win: (131072 - 2000) >> ourShift})
	assert.Equal(t, 2000, c.Readable())
	// The second fills, by a segment that overlaps both sides.
	p.send(t, seg{flags: "P.", seq: peerISN + 1501, ack: iss + 1, win: 512, payload: data(1500, 2000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 4001, win: (131072 - 4000) >> ourShift})
	s.expectNothing(t)
	assert.Equal(t, data(0, 4000), readAll(t, c))
	assert.Equal(t, uint64(4000), c.Stats().BytesReceived)
}

// Duplicates and old segments are acknowledged again and never delivered
// twice; a segment that overlaps what came delivers only its new bytes.
func TestDuplicateAndOldSegments(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000)

	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1001, win: (131072 - 1000) >> ourShift})
	// The same segment again: entirely old, not acceptable, re-ACKed.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1001, win: (131072 - 1000) >> ourShift})
	s.expectNothing(t)
	assert.Equal(t, 1000, c.Readable())
	// Half old, half new.
	p.send(t, seg{flags: ".", seq: peerISN + 501, ack: iss + 1, win: 512, payload: data(500, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1501, win: (131072 - 1500) >> ourShift})
	// An old bare ACK: re-ACKed too (RFC 9293 3.10.7.4).
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1501, win: (131072 - 1500) >> ourShift})
	s.expectNothing(t)
	assert.Equal(t, data(0, 1500), readAll(t, c))
	assert.Equal(t, uint64(1500), c.Stats().BytesReceived)
	// A duplicate of an out-of-order segment is not kept twice either.
	p.send(t, seg{flags: ".", seq: peerISN + 2001, ack: iss + 1, win: 512, payload: data(2000, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1501, win: fullWin})
	p.send(t, seg{flags: ".", seq: peerISN + 2001, ack: iss + 1, win: 512, payload: data(2000, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1501, win: fullWin})
	p.send(t, seg{flags: ".", seq: peerISN + 1501, ack: iss + 1, win: 512, payload: data(1500, 500)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2101, win: (131072 - 600) >> ourShift})
	assert.Equal(t, data(1500, 600), readAll(t, c))
}

// The acceptability check is widened at both edges as Linux's
// tcp_sequence: a bare ACK at the right edge of the window we advertised
// (a peer whose window we filled sends from its SND.MAX there), and a
// retransmission of data that ends at RCV.NXT, have their ACK fields
// taken. Strictly by RFC 9293 both are unacceptable, and two stacks that
// went back after timeouts at once dropped each other's ACKs until they
// timed out (the simulation matrix's seed 86).
func TestACKsOnWindowEdgeAndOldData(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1000)
	_, err := c.Write(data(0, 2000))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	// A bare ACK at RCV.NXT + RCV.WND: taken, and not answered.
	p.send(t, seg{flags: ".", seq: peerISN + 1 + 131072, ack: iss + 1001, win: 512})
	s.expectNothing(t)
	assert.Equal(t, 1000, c.Unacked())
	// Data, then the same data again with news in its ACK field.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 2001, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2001, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 2001, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	s.expectNothing(t)
	assert.Zero(t, c.Unacked())
	assert.Equal(t, data(0, 100), readAll(t, c))
}

// A full receive buffer advertises a zero window; a zero window accepts
// only bare segments at RCV.NXT (RFC 9293 3.10.7.4's table), and a Read
// that frees enough room (an MSS, receiver SWS avoidance, 3.8.6.2.2)
// sends a window update. The buffer is a fixed 4 KiB (auto-tuning off).
func TestReceiveWindowFullAndUpdate(t *testing.T) {
	s := newStack(t, tcp.Config{RecvBuffer: 4096, RecvBufferMax: 4096})
	p, c, iss := serverConn(t, s, 1460)
	assert.Equal(t, uint8(0), s.shift())

	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 1460)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1461, win: 4096 - 1460})
	p.send(t, seg{flags: ".", seq: peerISN + 1461, ack: iss + 1, win: 512, payload: data(1460, 1460)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2921, win: 4096 - 2920})
	// More than the window: only what fits is taken.
	p.send(t, seg{flags: "P.", seq: peerISN + 2921, ack: iss + 1, win: 512, payload: data(2920, 1460)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 4097, win: 0})
	s.expectNothing(t)
	assert.Equal(t, 4096, c.Readable())

	// Zero window: data is not acceptable, even one byte at RCV.NXT (a
	// probe); it is answered with the zero window.
	p.send(t, seg{flags: ".", seq: peerISN + 4097, ack: iss + 1, win: 512, payload: data(4096, 1)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 4097, win: 0})
	// A bare ACK anywhere but RCV.NXT is not acceptable either.
	p.send(t, seg{flags: ".", seq: peerISN + 4098, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 4097, win: 0})
	// One at RCV.NXT is, and its ACK field is processed: it acknowledges
	// our data.
	_, err := c.Write(data(0, 10))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 4097, win: 0, payload: data(0, 10)})
	p.send(t, seg{flags: ".", seq: peerISN + 4097, ack: iss + 11, win: 512})
	s.expectNothing(t)
	assert.Zero(t, c.Unacked())

	// Reading less than an MSS opens no window.
	buf := make([]byte, 1000)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, data(0, 1000), buf[:n])
	s.expectNothing(t)
	// An MSS free: the window update.
	n, err = c.Read(buf[:460])
	require.NoError(t, err)
	assert.Equal(t, data(1000, 460), buf[:n])
	p.expect(t, seg{flags: ".", seq: iss + 11, ack: peerISN + 4097, win: 1460})
	s.expectNothing(t)
	// The rest: the whole buffer.
	assert.Equal(t, data(1460, 4096-1460), readAll(t, c))
	p.expect(t, seg{flags: ".", seq: iss + 11, ack: peerISN + 4097, win: 4096})
	s.expectNothing(t)
	// And the window takes data again: a small segment, whose ACK waits
	// for the delayed-ACK timer.
	p.send(t, seg{flags: "P.", seq: peerISN + 4097, ack: iss + 11, win: 512, payload: data(4096, 100)})
	s.expectNothing(t)
	s.advance(40 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 11, ack: peerISN + 4197, win: 3996})
	assert.Equal(t, data(4096, 100), readAll(t, c))
}

// The peer shuts its window: once nothing is in flight the persist timer
// probes it with one byte after an RTO (RFC 9293 3.8.6.1), and the probes
// back off exponentially (RFC 1122 4.2.2.17). They go on as long as the
// peer answers, however many retries that takes, and never set off a fast
// retransmit. When the window opens, the data flows.
func TestZeroWindowProbe(t *testing.T) {
	s := newStack(t, tcp.Config{Retries: 3})
	p, c, iss := clientConn(t, s, 1460)

	_, err := c.Write(data(0, 2000))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	p.expect(t, seg{flags: "P.", seq: iss + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 540)})
	s.advance(100 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2001, win: 0})
	s.expectNothing(t)
	assert.Zero(t, s.tb.Timers())
	// Two samples of 100 ms: SRTT 100, RTTVAR 37.5, RTO 250 ms.
	_, rto := c.SRTT()
	require.Equal(t, 250*ms, rto)

	_, err = c.Write(data(2000, 500))
	require.NoError(t, err)
	s.expectNothing(t)
	s.expectDeadline(t, s.now+250*ms)
	s.advance(250*ms - 1)
	s.expectNothing(t)
	s.advance(1)
	probe := seg{flags: ".", seq: iss + 2001, ack: peerISN + 1, win: fullWin, payload: data(2000, 1)}
	p.expect(t, probe)
	s.expectNothing(t)

	// The peer keeps its window shut and answers every probe, more often
	// than Retries: the probes back off, 500 ms, 1 s, 2 s, ..., and the
	// connection lives.
	wait := 500 * ms
	for i := range 6 {
		s.advance(10 * ms)
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2001, win: 0})
		if i == 0 {
			// Duplicated by the network: three ACKs alike are no reason
			// to send into the closed window.
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2001, win: 0})
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2001, win: 0})
		}
		s.expectNothing(t)
		s.expectDeadline(t, s.now-10*ms+wait)
		s.advance(wait - 10*ms)
		p.expect(t, probe)
		s.expectNothing(t)
		wait *= 2
	}
	assert.Equal(t, tcp.Established, c.State())
	assert.NoError(t, c.Err())

	// The window opens with the ACK of the probe byte: the rest goes.
	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2002, win: 512})
	p.expect(t, seg{flags: "P.", seq: iss + 2002, ack: peerISN + 1, win: fullWin, payload: data(2001, 499)})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2501, win: 512})
	s.expectNothing(t)
	assert.Zero(t, s.tb.Timers())
}

// A peer that stops answering the probes times the connection out like
// any retransmission.
func TestZeroWindowProbeUnanswered(t *testing.T) {
	s := newStack(t, tcp.Config{Retries: 2})
	p, c, iss := clientConn(t, s, 1460)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 0})
	_, err := c.Write(data(0, 10))
	require.NoError(t, err)
	s.expectNothing(t)
	probe := seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1)}
	// RTO 300 ms: one sample of 100 ms.
	assert.Equal(t, 300*ms, s.advanceToDeadline(t))
	p.expect(t, probe)
	assert.Equal(t, 600*ms, s.advanceToDeadline(t))
	p.expect(t, probe)
	assert.Equal(t, 1200*ms, s.advanceToDeadline(t))
	p.expect(t, probe)
	assert.Equal(t, 2400*ms, s.advanceToDeadline(t))
	s.expectNothing(t)
	assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	s.expectEmpty(t)
}

// RFC 6298: the retransmission timer backs off exponentially; Karn's
// rule takes no RTT sample from a retransmitted segment and keeps the
// backed-off RTO until a fresh segment gives one.
func TestRetransmitBackoffAndKarn(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := clientConn(t, s, 1460)
	srtt, rto := c.SRTT()
	require.Equal(t, 100*ms, srtt)
	require.Equal(t, 300*ms, rto) // 100 + 4×50

	_, err := c.Write(data(0, 100))
	require.NoError(t, err)
	first := seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 100)}
	p.expect(t, first)
	for _, d := range []time.Duration{300 * ms, 600 * ms, 1200 * ms} {
		s.expectDeadline(t, s.now+d)
		s.advance(d - 1)
		s.expectNothing(t)
		s.advance(1)
		p.expect(t, first)
		s.expectNothing(t)
	}
	assert.Equal(t, uint64(3), c.Stats().Retransmits)
	assert.Equal(t, uint64(3), s.tb.Stats().RetransSegs)

	// The ACK of the retransmitted segment: no sample (Karn).
	s.advance(30 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 101, win: 512})
	s.expectNothing(t)
	srtt, rto = c.SRTT()
	assert.Equal(t, 100*ms, srtt, "no sample from a retransmitted segment")
	assert.Equal(t, 2400*ms, rto, "the backed-off RTO stays")
	assert.Zero(t, s.tb.Timers())

	// A new segment runs on the backed-off RTO; its ACK is a sample that
	// ends the backoff.
	_, err = c.Write(data(100, 100))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 101, ack: peerISN + 1, win: fullWin, payload: data(100, 100)})
	s.expectDeadline(t, s.now+2400*ms)
	s.advance(100 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 201, win: 512})
	srtt, rto = c.SRTT()
	assert.Equal(t, 100*ms, srtt)
	assert.Equal(t, 250*ms, rto) // RTTVAR 3/4×50
}

// After Retries retransmissions without an answer the connection fails
// with ETIMEDOUT and goes, without a RST (as Linux).
func TestRetransmitRetriesExhausted(t *testing.T) {
	s := newStack(t, tcp.Config{Retries: 2, NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := clientConn(t, s, 1460)
	_, err := c.Write(data(0, 100))
	require.NoError(t, err)
	first := seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 100)}
	p.expect(t, first)
	assert.Equal(t, 300*ms, s.advanceToDeadline(t))
	p.expect(t, first)
	assert.Equal(t, 600*ms, s.advanceToDeadline(t))
	p.expect(t, first)
	assert.Equal(t, 1200*ms, s.advanceToDeadline(t))
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	assert.ErrorIs(t, c.Err(), tcp.ErrTimeout)
	_, err = c.Read(make([]byte, 10))
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	_, err = c.Write(data(0, 10))
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	assert.Zero(t, s.tb.Stats().EstabResets)
	s.expectEmpty(t)
	// The peer, still there, hears a RST for its next segment.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 101, win: 512})
	p.expect(t, seg{flags: "R", seq: iss + 101})
}

// Three duplicate ACKs resend the segment at SND.UNA at once (RFC 5681
// 3.2), and only it.
func TestFastRetransmit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	_, err := c.Write(data(0, 4*1460))
	require.NoError(t, err)
	for i := range 4 {
		flags := "."
		if i == 3 {
			flags = "P."
		}
		p.expect(t, seg{flags: flags, seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
	}
	s.advance(50 * ms)
	// The first arrived, the second was lost: the third and fourth draw
	// duplicate ACKs, and the peer's third is the trigger.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 1460)})
	s.expectNothing(t)
	// A fourth duplicate does not resend again.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512})
	s.expectNothing(t)
	assert.Equal(t, uint64(1), c.Stats().Retransmits)

	// The ACK of everything.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 5841, win: 512})
	s.expectNothing(t)
	assert.Zero(t, c.Unacked())
	assert.Zero(t, s.tb.Timers())
}

// After a retransmission timeout moved SND.NXT back, a segment without
// data still goes out from SND.MAX: the peer may have everything up to
// there, and would drop a pure ACK from further back as unacceptable. (A
// two-stack simulation deadlocked on it: both sides going back at once,
// each one's retransmissions and ACKs all old to the other.)
func TestPureACKFromSndMaxAfterTimeout(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := clientConn(t, s, 1000)
	_, err := c.Write(data(0, 3000))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 2001, ack: peerISN + 1, win: fullWin, payload: data(2000, 1000)})
	s.advance(300 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	// SND.NXT is now ISS+1001. Out-of-order data draws a duplicate ACK
	// at once: from SND.MAX.
	p.send(t, seg{flags: ".", seq: peerISN + 101, ack: iss + 1, win: 512, payload: data(100, 10)})
	p.expect(t, seg{flags: ".", seq: iss + 3001, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t) // the loss window: one segment in flight (RFC 5681 3.1)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
}

// After a retransmission timeout one segment goes (RFC 5681 3.1's loss
// window: cwnd 1 SMSS, ssthresh max(FlightSize/2, 2*SMSS)), and each ACK
// of new data lets one more segment go besides the ones it frees (slow
// start). An ACK of everything sends nothing more: going back N with the
// whole window resent copies the receiver mostly had, and their
// duplicate ACKs reached a closed connection as RSTs (issue 9). A second
// timeout in a row keeps ssthresh (RFC 5681 3.1).
func TestTimeoutLossWindow(t *testing.T) {
	s := newStack(t, tcp.Config{CongestionControl: tcp.CongestionReno, NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := clientConn(t, s, 1000)
	_, err := c.Write(data(0, 6000))
	require.NoError(t, err)
	for i := range 6 {
		p.expect(t, seg{flags: flagsFor(i == 5), seq: iss + 1 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)})
	}
	s.advance(300 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	s.expectNothing(t)
	assertWindow(t, c, 1000, 3000)
	s.advanceToDeadline(t)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	assertWindow(t, c, 1000, 3000)
	// ACK of the first: two more (the one it freed, and one of slow start).
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 2001, ack: peerISN + 1, win: fullWin, payload: data(2000, 1000)})
	s.expectNothing(t)
	// The receiver had the rest: one ACK of everything, nothing resent.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 6001, win: 512})
	s.expectNothing(t)
	assert.Zero(t, c.Unacked())
	assert.Equal(t, uint64(4), c.Stats().Retransmits)
	assert.Zero(t, c.Stats().FastRetransmits)
	// Slow start up to ssthresh, 3000; congestion avoidance takes the
	// other 4000 bytes acknowledged: one SMSS more.
	assertWindow(t, c, 4000, 3000)

	// Afterwards cwnd, not the peer's window, bounds the flight.
	_, err = c.Write(data(0, 6000))
	require.NoError(t, err)
	for i := range 4 {
		p.expect(t, seg{flags: ".", seq: iss + 6001 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)})
	}
	s.expectNothing(t)
}

// assertWindow checks c's congestion window and slow start threshold.
func assertWindow(t *testing.T, c *tcp.Conn, cwnd, ssthresh uint32) {
	t.Helper()
	gotCwnd, gotSsthresh, _ := c.CongestionWindow()
	assert.Equal(t, cwnd, gotCwnd, "cwnd")
	assert.Equal(t, ssthresh, gotSsthresh, "ssthresh")
}

// flagsFor is the flags of a data segment: PSH on the last of a write.
func flagsFor(last bool) string {
	if last {
		return "P."
	}
	return "."
}

// Issue 9's RSTs, played as the kernel played them: the server's last
// flight and FIN go out in LAST-ACK, the first segment is lost, the
// timeout resends it, and the peer's ACK covers everything and the FIN:
// the connection ends, and nothing else was sent to draw duplicate ACKs
// (going back N, the rest of the flight went out with it, and the
// peer's duplicate ACK for each copy hit a closed connection: RSTs).
func TestLastAckTimeoutSendsNoBurst(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := serverConn(t, s, 1000)
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2, win: fullWin})
	_, err := c.Write(data(0, 4000))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	for i := range 4 {
		flags := "."
		if i == 3 {
			flags = "FP."
		}
		p.expect(t, seg{flags: flags, seq: iss + 1 + uint32(1000*i), ack: peerISN + 2, win: fullWin, payload: data(1000*i, 1000)})
	}
	require.Equal(t, tcp.LastAck, c.State())
	s.advanceToDeadline(t)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2, win: fullWin, payload: data(0, 1000)})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 2, ack: iss + 4002, win: 512})
	assert.Equal(t, tcp.Closed, c.State())
	s.expectNothing(t)
	assert.Zero(t, s.tb.Stats().OutRsts)
	assert.Equal(t, uint64(1), s.tb.Stats().RetransSegs)
}

// A peer that offers only 10 bytes gets every segment cut to that window
// pushed, as Linux's forced push does once more than half the largest
// window the peer offered went out since the last PSH: a receiver that
// delivers on PSH would otherwise sit on data its small buffer holds.
// With a large window, full segments go without PSH and the write's last
// one carries it.
func TestPushOnSegmentCutToSmallWindow(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 10, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535})
	_, err := c.Write(data(0, 25))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: 65535, payload: data(0, 10)})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 11, win: 10})
	p.expect(t, seg{flags: "P.", seq: iss + 11, ack: peerISN + 1, win: 65535, payload: data(10, 10)})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 21, win: 10})
	p.expect(t, seg{flags: "P.", seq: iss + 21, ack: peerISN + 1, win: 65535, payload: data(20, 5)})
	s.expectNothing(t)

	// The window opens wide: full segments without PSH, the last with it.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 26, win: 65535})
	_, err = c.Write(data(25, 3000))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 26, ack: peerISN + 1, win: 65535, payload: data(25, 1460)})
	p.expect(t, seg{flags: ".", seq: iss + 1486, ack: peerISN + 1, win: 65535, payload: data(1485, 1460)})
	p.expect(t, seg{flags: "P.", seq: iss + 2946, ack: peerISN + 1, win: 65535, payload: data(2945, 80)})
	s.expectNothing(t)
}
