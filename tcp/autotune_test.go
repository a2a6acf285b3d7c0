package tcp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// rtt is the scripted peer's round trip.
const rtt = 10 * ms

// receiver plays a bulk sender with timestamps to one of the table's
// connections: it sends full segments from stream offset sent, and takes
// the table's ACKs, which must acknowledge exactly what it sent. Its
// segments echo the TSval of the table's last ACK of the round before,
// as a sender's one round trip later do: the table's RTT samples are rtt.
type receiver struct {
	p      *peer
	c      *tcp.Conn
	ourSeq uint32 // the table's SND.NXT
	sent   int
	edge   int // the right edge of the table's last window, a stream offset
	wnd    int // the table's last window, scaled
	mss    int
	ecr    uint32 // the TSval echoed this round
	lastTS uint32 // the TSval of the table's last ACK
}

// round starts a round trip: rtt later (a delayed ACK's timer may have
// fired), the ACKs of the last one heard.
func (r *receiver) round(t *testing.T) {
	t.Helper()
	r.p.advance(rtt)
	r.drain(t)
	r.ecr = r.lastTS
}

// tsNow is the peer's timestamps option now.
func (r *receiver) tsNow() *tsOpt { return ts(peerTS+uint32(r.p.now/ms), r.ecr) }

// send sends n bytes in full segments, or as many of them as the
// table's window lets in, the table reading everything after each if
// read, and checks every segment the table answers with: a pure ACK of
// all that was sent (window updates included; delayed ACKs too).
func (r *receiver) send(t *testing.T, n int, read bool) {
	t.Helper()
	for n > 0 && r.edge > r.sent {
		k := min(n, r.mss, r.edge-r.sent)
		r.p.send(t, seg{flags: ".", seq: peerISN + 1 + uint32(r.sent), ack: r.ourSeq, win: 512, payload: data(r.sent, k), ts: r.tsNow()})
		r.sent += k
		n -= k
		if read {
			require.Equal(t, data(r.sent-r.c.Readable(), r.c.Readable()), readAll(t, r.c))
		}
		r.drain(t)
	}
}

// drain takes the table's ACKs.
func (r *receiver) drain(t *testing.T) {
	t.Helper()
	for {
		got, _, _, ok := r.p.next(t)
		if !ok {
			return
		}
		require.Equal(t, ".", got.flags, "%v", got)
		require.Equal(t, r.ourSeq, got.seq, "%v", got)
		require.Equal(t, uint32(peerISN+1+r.sent), got.ack, "%v", got)
		require.Empty(t, got.payload, "%v", got)
		require.NotNil(t, got.ts)
		r.wnd = int(got.win) << ourShift
		r.edge = r.sent + r.wnd
		r.lastTS = got.ts.val
	}
}

// bulkReceiver opens a passive connection with timestamps for a bulk
// transfer.
func bulkReceiver(t *testing.T, s *stack) *receiver {
	t.Helper()
	p, c, iss := serverConnTS(t, s, 1460)
	return &receiver{p: p, c: c, ourSeq: iss + 1, edge: 65535, wnd: 65535, mss: 1448, lastTS: p.tsval()}
}

// linuxRcvWin is Linux's tcp_rcv_space_adjust target for a round trip in
// which the app read copied bytes after one in which it read space: twice
// copied plus 16 full segments (1448 bytes with timestamps), plus twice
// that again scaled by the growth (a sender in slow start).
func linuxRcvWin(copied, space int) int {
	win := 2*copied + 16*1448
	return win + 2*(win*(copied-space)/space)
}

// TestRecvAutoTuneGrowsPerRTT: with an app that reads everything, the
// receive buffer, and so the window, grows once per round trip to
// Linux's target for what the app read in the last one (exactly, for the
// first growth), up to Config.RecvBufferMax and never beyond, while the
// peer's flight doubles each round trip as slow start's does. The
// window scale (7) covers the 6 MiB maximum from the SYN,ACK on. The
// allocations double, so reaching 6 MiB from 128 KiB takes six.
func TestRecvAutoTuneGrowsPerRTT(t *testing.T) {
	s := newStack(t, tcp.Config{})
	r := bulkReceiver(t, s)
	const most = 6 << 20
	flight := 10 * 1448
	prevBuf, _ := r.c.Buffers()
	require.Equal(t, 128<<10, prevBuf)
	space := 10 * 1448 // Linux's first guess of a round trip's data
	read := 0          // read in the round trip being measured
	grows, maxWnd := 0, 0
	for round := 0; round < 14; round++ {
		r.round(t)
		// The first segment of the round ends the last round trip's
		// measurement: the buffer grows (or not) at once, and then not
		// again until the next round trip.
		r.send(t, min(flight, r.wnd, r.mss), true)
		maxWnd = max(maxWnd, r.wnd)
		buf, _ := r.c.Buffers()
		if read > space && round > 0 {
			want := min(linuxRcvWin(read, space), most)
			if grows == 0 {
				require.Equal(t, want, buf, "round %d: the first growth, Linux's target for %d bytes read after %d", round, read, space)
			}
			if want > prevBuf {
				require.Equal(t, want, buf, "round %d: grown to the target", round)
				grows++
			}
			space = read
		}
		prevBuf = buf
		t.Logf("round %d: buffer %d window %d flight %d", round, buf, r.wnd, min(flight, r.wnd))
		read = min(flight, r.mss)
		r.send(t, min(flight, r.wnd)-min(flight, r.mss), true)
		read += min(flight, r.wnd) - min(flight, r.mss)
		buf, _ = r.c.Buffers()
		require.Equal(t, prevBuf, buf, "round %d: one growth per round trip", round)
		require.LessOrEqual(t, r.wnd, most, "round %d: window past the maximum", round)
		maxWnd = max(maxWnd, r.wnd)
		flight *= 2
	}
	buf, _ := r.c.Buffers()
	assert.Equal(t, most, buf, "the maximum reached")
	assert.Equal(t, most, maxWnd, "the whole 6 MiB offered, and no more")
	assert.GreaterOrEqual(t, grows, 4)
	st := s.tb.Stats()
	assert.Equal(t, uint64(6), st.BufferGrowths, "128 KiB doubled to 4 MiB, then 6 MiB")
	assert.Zero(t, st.MemoryPressures)
	assert.Zero(t, st.RcvQDrops)
}

// TestRecvAutoTuneNonReadingApp: an app that does not read never grows
// its buffer: the window closes at 128 KiB, round trip after round trip.
func TestRecvAutoTuneNonReadingApp(t *testing.T) {
	s := newStack(t, tcp.Config{})
	r := bulkReceiver(t, s)
	for range 10 {
		r.round(t)
		r.send(t, min(r.wnd, 64<<10), false)
	}
	buf, _ := r.c.Buffers()
	assert.Equal(t, 128<<10, buf)
	assert.Equal(t, r.sent, r.c.Readable(), "all taken")
	assert.Greater(t, r.sent, 127<<10, "the window offered: 128 KiB, in units of 2^7")
	assert.Zero(t, r.wnd, "the window closed")
	assert.Zero(t, s.tb.Stats().BufferGrowths)
	// Reading it all later grows nothing either: nothing arrived in the
	// round trip measured.
	readAll(t, r.c)
	r.drain(t)
	assert.Equal(t, 128<<10, r.wnd)
	buf, _ = r.c.Buffers()
	assert.Equal(t, 128<<10, buf)
}

// TestSetRecvBufferPinsPassive is the case a user saw: SetRecvBuffer(4096)
// after the handshake, and the peer sends 4,097 bytes into the 64 KiB
// window the SYN,ACK offered. Exactly 4,096 are taken and acknowledged;
// the 4,097th is dropped unacknowledged (RcvQDrops), the window offered
// is not taken back (RFC 9293 3.8.6), and once the app reads, the byte's
// retransmission is taken. Reading fast grows nothing: the size is pinned.
func TestSetRecvBufferPinsPassive(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	c.SetRecvBuffer(4096)
	rcv, _ := c.Buffers()
	require.Equal(t, 4096, rcv)
	offered := uint32(65535) // the SYN,ACK's, unscaled
	for _, sg := range []struct{ from, to int }{{0, 1460}, {1460, 2920}, {2920, 4097}} {
		p.send(t, seg{flags: ".", seq: peerISN + 1 + uint32(sg.from), ack: iss + 1, win: 512, payload: data(sg.from, sg.to-sg.from)})
		taken := min(sg.to, 4096)
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(taken), win: uint16((offered - uint32(taken)) >> ourShift)})
	}
	s.expectNothing(t)
	assert.Equal(t, 4096, c.Readable())
	assert.Equal(t, uint64(1), s.tb.Stats().RcvQDrops)
	assert.Equal(t, data(0, 4096), readAll(t, c))
	s.expectNothing(t) // the window offered still stands: no update

	s.advance(200 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 4097, ack: iss + 1, win: 512, payload: data(4096, 1)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 4098, win: uint16((offered - 4097) >> ourShift)})
	assert.Equal(t, data(4096, 1), readAll(t, c))
	rcv, _ = c.Buffers()
	assert.Equal(t, 4096, rcv)
	assert.Zero(t, s.tb.Stats().BufferGrowths)
}

// TestSetRecvBufferPinsActive: pinned before the SYN, the window is the
// pinned size exactly from the SYN on, with a window scale chosen for it
// (0); the peer's 4,097 bytes are cut at the window to 4,096, and reading
// them reopens exactly 4,096. Round trips of a fast reader grow nothing.
func TestSetRecvBufferPinsActive(t *testing.T) {
	s := newStack(t, tcp.Config{NoTimestamps: true})
	c, err := s.tb.Dial(s.now, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	c.SetRecvBuffer(4096)
	p := s.peer(c.LocalAddr(), peerServer)
	iss := p.isn()
	p.expect(t, seg{flags: "S", seq: iss, win: 4096, mss: 1460, ws: wscale(0), sackOK: true})
	s.advance(rtt)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460, ws: wscale(peerShift)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 4096})

	for round := range 5 {
		base := round * 4096
		for i, n := range []int{1460, 1460, 1177} {
			off := base + 1460*i
			p.send(t, seg{flags: ".", seq: peerISN + 1 + uint32(off), ack: iss + 1, win: 512, payload: data(off, n)})
			taken := min(1460*i+n, 4096)
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(base+taken), win: uint16(4096 - taken)})
		}
		assert.Equal(t, data(base, 4096), readAll(t, c))
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(base+4096), win: 4096})
		s.advance(rtt)
	}
	rcv, _ := c.Buffers()
	assert.Equal(t, 4096, rcv)
	assert.Zero(t, s.tb.Stats().BufferGrowths)
}

// TestSetSendBufferPins: a send buffer pinned at 4,096 bytes takes 4,096
// of a 10,000-byte Write, then nothing until the peer acknowledges some,
// and then exactly what was acknowledged; a full buffer's ACKs grow it
// no more (auto-tuning is off for it, though SendBufferMax would allow).
func TestSetSendBufferPins(t *testing.T) {
	s := newStack(t, tcp.Config{SendBufferMax: 1 << 20})
	p, c, iss := serverConn(t, s, 1460)
	c.SetSendBuffer(4096)
	n, err := c.Write(data(0, 10000))
	require.NoError(t, err)
	require.Equal(t, 4096, n)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	p.expect(t, seg{flags: ".", seq: iss + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 1460)})
	p.expect(t, seg{flags: "P.", seq: iss + 2921, ack: peerISN + 1, win: fullWin, payload: data(2920, 1176)})
	_, err = c.Write(data(4096, 1))
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
	assert.Zero(t, c.Writable())

	acked := 0
	for round := range 8 {
		s.advance(rtt)
		acked += 1000
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(acked), win: 512})
		require.Equal(t, 1000, c.Writable(), "round %d", round)
		n, err := c.Write(data(4096+1000*round, 10000))
		require.NoError(t, err)
		require.Equal(t, 1000, n, "round %d", round)
		p.expect(t, seg{flags: "P.", seq: iss + 1 + uint32(4096+1000*round), ack: peerISN + 1, win: fullWin, payload: data(4096+1000*round, 1000)})
	}
	_, snd := c.Buffers()
	assert.Equal(t, 4096, snd)
	assert.Zero(t, s.tb.Stats().BufferGrowths)
}

// TestSendBufferGrowsWithCwnd: a writer that keeps the send buffer full
// has it grown on the ACKs that find it full to twice the congestion
// window (Linux's tcp_sndbuf_expand), up to SendBufferMax; the
// allocations double, so 128 KiB to 1 MiB takes three.
func TestSendBufferGrowsWithCwnd(t *testing.T) {
	const most = 1 << 20
	s := newStack(t, tcp.Config{SendBufferMax: most})
	p, c, iss := serverConn(t, s, 1460)
	written, acked := 0, 0
	fill := func() {
		for {
			n, err := c.Write(data(written, 64<<10))
			if err != nil {
				require.ErrorIs(t, err, tcp.ErrWouldBlock)
				return
			}
			written += n
		}
	}
	fill()
	for round := range 12 {
		// Take the round's flight. The peer's window (0xffff × 128)
		// never limits it: cwnd would stop at twice a flight the window
		// held back (congestion window validation), and the buffer with it.
		sent := acked
		for {
			got, _, _, ok := p.next(t)
			if !ok {
				break
			}
			require.Equal(t, iss+1+uint32(sent), got.seq)
			sent += len(got.payload)
		}
		s.advance(rtt)
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(sent), win: 0xffff})
		acked = sent
		cwnd, _, _ := c.CongestionWindow()
		_, snd := c.Buffers()
		require.GreaterOrEqual(t, snd, min(2*int(cwnd), most), "round %d: the buffer of an ACK that found it full", round)
		require.LessOrEqual(t, snd, most, "round %d", round)
		fill()
	}
	_, snd := c.Buffers()
	assert.Equal(t, most, snd)
	assert.Equal(t, uint64(3), s.tb.Stats().BufferGrowths)
}

// TestMemoryLimitPushesBack: two tables share one Memory whose limit
// leaves room for one doubling of one receive buffer beyond the two
// connections' initial buffers. The first connection to need it grows;
// every later growth, of either, is refused and counted
// (MemoryPressures), and the transfers go on within what they have:
// every byte sent is taken and acknowledged.
func TestMemoryLimitPushesBack(t *testing.T) {
	mem := tcp.NewMemory(2*(256<<10) + 128<<10)
	s1 := newStack(t, tcp.Config{Memory: mem})
	s2 := newStack(t, tcp.Config{Memory: mem})
	r1, r2 := bulkReceiver(t, s1), bulkReceiver(t, s2)
	require.Equal(t, int64(2*(256<<10)), mem.Used(), "the initial buffers, charged")
	flight := 10 * 1448
	for range 8 {
		for _, x := range []struct {
			s *stack
			r *receiver
		}{{s1, r1}, {s2, r2}} {
			x.r.round(t)
			x.r.send(t, min(flight, x.r.wnd), true)
		}
		flight *= 2
	}
	b1, _ := r1.c.Buffers()
	b2, _ := r2.c.Buffers()
	assert.Greater(t, b1, 128<<10, "the first grew")
	assert.LessOrEqual(t, b1, 256<<10, "within the one doubling")
	assert.Equal(t, 128<<10, b2, "the second could not")
	assert.Equal(t, mem.Limit(), mem.Used())
	assert.Equal(t, uint64(1), s1.tb.Stats().BufferGrowths)
	assert.Positive(t, s1.tb.Stats().MemoryPressures)
	assert.Positive(t, s2.tb.Stats().MemoryPressures)
	assert.Zero(t, s1.tb.Stats().RcvQDrops+s2.tb.Stats().RcvQDrops, "nothing accepted was dropped")
	assert.Greater(t, r2.sent, 4*(128<<10), "the transfers went on")
}

// TestIdleShrink: a connection whose receive and send buffers grew gives
// the memory back once it has gone idleShrink (1 s) without receiving a
// segment, with everything it sent acknowledged and everything received
// read: its timer runs exactly then. The window it offered is retracted
// to the initial buffer (the peer's next data sees 128 KiB, not 6 MiB),
// and auto-tuning starts afresh.
func TestIdleShrink(t *testing.T) {
	s := newStack(t, tcp.Config{SendBufferMax: 1 << 20})
	r := bulkReceiver(t, s)
	flight := 10 * 1448
	for range 8 {
		r.round(t)
		r.send(t, min(flight, r.wnd), true)
		flight *= 2
	}
	// And a send buffer grown by a writer that fills it.
	c, p, iss := r.c, r.p, r.ourSeq-1
	sent := 0
	// A round trip: the flight out, and the peer's ACK of all of it.
	ackFlight := func() {
		for {
			got, _, _, ok := p.next(t)
			if !ok {
				break
			}
			sent += len(got.payload)
		}
		r.round(t)
		p.send(t, seg{flags: ".", seq: peerISN + 1 + uint32(r.sent), ack: iss + 1 + uint32(sent), win: 65535, ts: r.tsNow()})
	}
	for range 8 {
		c.Write(data(0, 512<<10))
		ackFlight()
	}
	for c.Unacked() > 0 { // the rest, without writing more
		ackFlight()
	}
	r.ourSeq = iss + 1 + uint32(sent)
	rcv, snd := c.Buffers()
	require.Greater(t, rcv, 128<<10)
	require.Greater(t, snd, 128<<10)
	lastRecv := s.now
	s.expectDeadline(t, lastRecv+time.Second)
	s.advance(time.Second - ms)
	rcv, _ = c.Buffers()
	require.Greater(t, rcv, 128<<10, "not idle long enough yet")
	s.advance(ms)
	rcv, snd = c.Buffers()
	assert.Equal(t, 128<<10, rcv)
	assert.Equal(t, 128<<10, snd)
	assert.Equal(t, uint64(2), s.tb.Stats().BufferShrinks)
	assert.Zero(t, s.tb.Timers(), "no timer left: nothing more to shrink")
	s.expectNothing(t)

	// The peer's next data: the ACK's window is the retracted one.
	r.send(t, 1460, false)
	assert.Equal(t, ((128<<10)-1460)>>ourShift<<ourShift, r.wnd)
}
