package tcp_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// dataSeg is the peer's segment of n bytes at stream offset off.
func dataSeg(iss uint32, off, n int) seg {
	return seg{flags: ".", seq: peerISN + 1 + uint32(off), ack: iss + 1, win: 512, payload: data(off, n)}
}

// ackSeg is the table's pure ACK of the first n bytes with window field
// win, from a connection that sent nothing.
func ackSeg(iss uint32, n int, win uint16) seg {
	return seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(n), win: win}
}

// window is the window field of a 128 KiB buffer holding n unread
// bytes, at ourShift.
func window(n int) uint16 { return uint16((131072 - n) >> ourShift) }

// quickACKs plays the start of a transfer into the table's default 128
// KiB buffer: 16 small segments, each acknowledged at once (Linux's
// quick-ACK mode: min(RCV.WND/(2×MSS), 16) ACKs, 16 for a 64 KiB window
// of 536-byte segments, the size assumed until larger ones come). It
// returns the bytes sent, none of them read.
func quickACKs(t *testing.T, p *peer, iss uint32) int {
	t.Helper()
	off := 0
	for range 16 {
		p.send(t, dataSeg(iss, off, 100))
		off += 100
		p.expect(t, ackSeg(iss, off, window(off)))
		p.stack.expectNothing(t)
		p.stack.advance(ms)
	}
	return off
}

// pastQuickACKs opens a connection to the table with a default buffer
// and plays its quick ACKs (quickACKs).
func pastQuickACKs(t *testing.T) (*stack, *peer, *tcp.Conn, uint32, int) {
	t.Helper()
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	return s, p, c, iss, quickACKs(t, p, iss)
}

// Quick ACKs at the start, then the delayed-ACK timer for a single small
// segment: no ACK until 40 ms have passed (Linux's TCP_ATO_MIN), then
// one. A silence longer than the RTO (200 ms here) starts quick ACKs
// again, as Linux's tcp_event_data_recv does for a sender that starts
// over.
func TestQuickACKThenDelayedACKTimer(t *testing.T) {
	s, p, _, iss, off := pastQuickACKs(t)

	p.send(t, dataSeg(iss, off, 100))
	off += 100
	s.expectNothing(t)
	s.expectDeadline(t, s.now+40*ms)
	s.advance(40*ms - 1)
	s.expectNothing(t)
	s.advance(1)
	p.expect(t, ackSeg(iss, off, window(off)))
	s.expectNothing(t)
	assert.Zero(t, s.tb.Timers())

	// Within the RTO: still delayed, and a second small segment in the
	// wait does not push the timer back.
	s.advance(150 * ms)
	p.send(t, dataSeg(iss, off, 100))
	s.advance(30 * ms)
	p.send(t, dataSeg(iss, off+100, 100))
	off += 200
	s.expectNothing(t)
	s.expectDeadline(t, s.now+10*ms)
	s.advance(10 * ms)
	p.expect(t, ackSeg(iss, off, window(off)))

	// 201 ms of silence, past the RTO: quick ACKs again.
	s.advance(201 * ms)
	for range 3 {
		p.send(t, dataSeg(iss, off, 100))
		off += 100
		p.expect(t, ackSeg(iss, off, window(off)))
	}
	s.expectNothing(t)
}

// A small buffer earns fewer quick ACKs: RCV.WND/(2×MSS), at least 2 when
// that is 0 (Linux's tcp_incr_quickack). A fixed 1 KiB buffer: 2.
func TestQuickACKSmallWindow(t *testing.T) {
	s := newStack(t, tcp.Config{RecvBuffer: 1024, RecvBufferMax: 1024})
	p, c, iss := serverConn(t, s, 1460)
	for i := range 3 {
		p.send(t, dataSeg(iss, 100*i, 100))
		if i < 2 {
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(100*(i+1)), win: uint16(1024 - 100*(i+1))})
		}
		s.expectNothing(t)
	}
	s.advance(40 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 301, win: 1024 - 300})
	assert.Equal(t, data(0, 300), readAll(t, c))
}

// A reply the app writes before the delayed-ACK timer fires carries the
// ACK, and the timer stops: no pure ACK follows.
func TestDelayedACKPiggybacksOnData(t *testing.T) {
	s, p, c, iss, off := pastQuickACKs(t)

	p.send(t, dataSeg(iss, off, 100))
	off += 100
	s.expectNothing(t)
	s.advance(10 * ms)
	_, err := c.Write([]byte("reply"))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1 + uint32(off), win: window(off), payload: []byte("reply")})
	s.expectNothing(t)
	// The loss probe's deadline (2*SRTT + 40 ms with one segment out,
	// tlp.go), not the delayed ACK's.
	s.expectDeadline(t, s.now+60*ms)
	s.advance(30 * ms)
	s.expectNothing(t)
}

// Every batch with a full-size segment has its ACK at its end, one ACK
// however many segments (so at least every second full-size segment is
// acknowledged, RFC 5681 4.2). Small segments wait for the delayed-ACK
// timer, which they do not push back, until more than a full segment's
// worth is unacknowledged (Linux's rcv_nxt − rcv_wup > rcv_mss).
// "Full-size" is the largest segment the peer sent: 1448 bytes with
// timestamps count, and a smaller one after them is small.
func TestACKFullSegmentsPerBatch(t *testing.T) {
	for _, size := range []int{1460, 1448} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s, p, _, iss, off := pastQuickACKs(t)

			// One full segment: its ACK at once.
			p.send(t, dataSeg(iss, off, size))
			off += size
			p.expect(t, ackSeg(iss, off, window(off)))
			s.expectNothing(t)
			// A batch of five: one ACK at its end.
			for range 5 {
				p.send(t, dataSeg(iss, off, size))
				off += size
			}
			p.expect(t, ackSeg(iss, off, window(off)))
			s.expectNothing(t)

			// Small ones: 600 bytes, then 1200, wait for the timer of
			// the first; 1800 is more than a full segment, at once.
			p.send(t, dataSeg(iss, off, 600))
			s.expectNothing(t)
			s.expectDeadline(t, s.now+40*ms)
			s.advance(5 * ms)
			p.send(t, dataSeg(iss, off+600, 600))
			s.expectNothing(t)
			s.expectDeadline(t, s.now+35*ms)
			s.advance(5 * ms)
			p.send(t, dataSeg(iss, off+1200, 600))
			off += 1800
			p.expect(t, ackSeg(iss, off, window(off)))
			s.expectNothing(t)
			assert.Zero(t, s.tb.Timers())

			// Short of the largest segment seen: small.
			p.send(t, dataSeg(iss, off, size-8))
			off += size - 8
			s.expectNothing(t)
			s.advance(40 * ms)
			p.expect(t, ackSeg(iss, off, window(off)))
		})
	}
}

// Out-of-order data is acknowledged at once, each segment by its own
// duplicate ACK; so is a segment that fills a hole in part or in full
// (RFC 5681 4.2). Once the holes are gone, ACKs are delayed again.
func TestImmediateACKOutOfOrderAndHoleFill(t *testing.T) {
	s, p, _, iss, off := pastQuickACKs(t)

	p.send(t, dataSeg(iss, off+1000, 100))
	p.expect(t, ackSeg(iss, off, window(off)))
	p.send(t, dataSeg(iss, off+2000, 100))
	p.expect(t, ackSeg(iss, off, window(off)))
	s.expectNothing(t)
	// Part of the first hole.
	p.send(t, dataSeg(iss, off, 500))
	p.expect(t, ackSeg(iss, off+500, window(off+500)))
	// The rest of it: the ACK jumps past the first range, to the second
	// hole.
	p.send(t, dataSeg(iss, off+500, 500))
	p.expect(t, ackSeg(iss, off+1100, window(off+1100)))
	// The second hole, in full.
	p.send(t, dataSeg(iss, off+1100, 900))
	p.expect(t, ackSeg(iss, off+2100, window(off+2100)))
	s.expectNothing(t)
	off += 2100

	// In order again, no hole: delayed.
	p.send(t, dataSeg(iss, off, 100))
	s.expectNothing(t)
	s.advance(40 * ms)
	p.expect(t, ackSeg(iss, off+100, window(off+100)))
}

// fill sends n bytes of full segments into an empty receive buffer that
// the app does not read, and returns the last ACK: the one for all n, at
// the end of the delayed-ACK timer if it waited.
func fill(t *testing.T, p *peer, iss uint32, n int) seg {
	t.Helper()
	var last seg
	drain := func() {
		for {
			got, _, _, ok := p.next(t)
			if !ok {
				return
			}
			last = got
		}
	}
	for off := 0; off < n; off += 1460 {
		p.send(t, dataSeg(iss, off, min(1460, n-off)))
		drain()
	}
	p.stack.advance(40 * ms)
	drain()
	require.Equal(t, peerISN+1+uint32(n), last.ack, "the last ACK covers the data")
	return last
}

// Receiver silly window avoidance (RFC 9293 3.8.6.2.2): a full buffer
// offers a zero window until min(MSS, buffer/2) is free, however close
// the app comes; then the window opens to all that is free, and the
// update goes at once. Unscaled and scaled (fixed buffers: auto-tuning off).
func TestReceiverSWSFullBuffer(t *testing.T) {
	for _, tc := range []struct {
		buf, step int
	}{
		{4096, 1460},   // MSS
		{2048, 1024},   // half the buffer
		{131072, 1460}, // scaled: the field counts 4-byte units
	} {
		t.Run(fmt.Sprint(tc.buf), func(t *testing.T) {
			s := newStack(t, tcp.Config{RecvBuffer: tc.buf, RecvBufferMax: tc.buf})
			p, c, iss := serverConn(t, s, 1460)
			shift := s.shift()
			last := fill(t, p, iss, tc.buf)
			assert.Zero(t, last.win, "a full buffer")

			buf := make([]byte, tc.buf)
			n, err := c.Read(buf[:tc.step-1])
			require.NoError(t, err)
			require.Equal(t, tc.step-1, n)
			s.expectNothing(t)
			// A zero-window probe draws an ACK: the window is still 0.
			p.send(t, dataSeg(iss, tc.buf, 1))
			p.expect(t, ackSeg(iss, tc.buf, 0))
			s.expectNothing(t)

			// One more byte: the window opens, by exactly the step.
			_, err = c.Read(buf[:1])
			require.NoError(t, err)
			p.expect(t, ackSeg(iss, tc.buf, uint16(tc.step>>shift)))
			s.expectNothing(t)
			assert.Equal(t, tc.buf-tc.step, c.Readable())
		})
	}
}

// Reading sends a window update (at once) when the window doubles or
// grows by two segments; less is told by the next ACK (Linux's
// tcp_cleanup_rbuf, BSD's two segments). A fixed 16 KiB buffer, unscaled.
func TestWindowUpdateRules(t *testing.T) {
	s := newStack(t, tcp.Config{RecvBuffer: 16384, RecvBufferMax: 16384})
	p, c, iss := serverConn(t, s, 1460)
	last := fill(t, p, iss, 16384-2000)
	assert.Equal(t, uint16(2000), last.win)
	read := func(n int) {
		t.Helper()
		got, err := c.Read(make([]byte, n))
		require.NoError(t, err)
		require.Equal(t, n, got)
	}
	read(1500) // 3500 free: an opening by 1500, not 2 MSS, not doubled
	s.expectNothing(t)
	read(499) // 3999
	s.expectNothing(t)
	read(1) // 4000: doubled
	p.expect(t, ackSeg(iss, 16384-2000, 4000))
	read(2919) // 6919: 2919 more
	s.expectNothing(t)
	read(1) // 6920: two segments more
	p.expect(t, ackSeg(iss, 16384-2000, 6920))
	s.expectNothing(t)
}

// The right edge of the window, as the peer reads it from each ACK
// (SEG.ACK + SEG.WND << shift), never moves left while the buffer has
// the room (the kept window rounds up to the scale's unit, as Linux
// rounds it), at worst by less than a unit when it lacks the room (RFC
// 7323 2.4), and never offers more than the buffer holds. With the
// 4-byte unit of a 128 KiB buffer: two cases, then random segment sizes
// and reads.
func TestWindowRightEdge(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first       int    // bytes of the first segment; one byte follows
		open, after uint16 // the window fields of the two ACKs
	}{
		// 130071 free: the window opens to 130068, 3 bytes short of the
		// buffer's end. One byte more leaves 130067 of it, rounded up to
		// 130068 (the edge moves right by 1), not down to 130064 (left
		// by 3).
		{"room", 1001, 130068 >> ourShift, 130068 >> ourShift},
		// 130072 free: the window reaches the buffer's end. One byte more
		// leaves 130071 of it and as much room: rounding up would offer
		// a byte the buffer lacks, so the field rounds down, 3 short.
		{"no room", 1000, 130072 >> ourShift, 130068 >> ourShift},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, tcp.Config{})
			p, _, iss := serverConn(t, s, 1460)
			p.send(t, dataSeg(iss, 0, tc.first))
			p.expect(t, ackSeg(iss, tc.first, tc.open))
			p.send(t, dataSeg(iss, tc.first, 1))
			p.expect(t, ackSeg(iss, tc.first+1, tc.after))
		})
	}

	rng := rand.New(rand.NewPCG(7, 8))
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	const unit = 1 << ourShift
	edge, off := int64(peerISN+1+65535), 0 // the SYN,ACK's window
	receded := 0
	buf := make([]byte, 4096)
	for range 3000 {
		if rng.IntN(3) > 0 {
			n := min(1+rng.IntN(1460), int(edge)-(peerISN+1+off))
			if n > 0 {
				p.send(t, dataSeg(iss, off, n))
				off += n
			}
		} else {
			_, _ = c.Read(buf[:rng.IntN(len(buf))])
		}
		if rng.IntN(4) == 0 {
			s.advance(40 * ms)
		}
		for {
			got, _, _, ok := p.next(t)
			if !ok {
				break
			}
			e := int64(got.ack) + int64(got.win)<<ourShift
			require.Greater(t, e, edge-unit, "the edge moved left by a unit: %v", got)
			if e < edge {
				receded++
			}
			rcv, _ := c.Buffers() // auto-tuned as the app reads
			require.LessOrEqual(t, int(got.win)<<ourShift, rcv-c.Readable(), "more window than room: %v", got)
			edge = max(edge, e)
		}
	}
	require.Equal(t, uint64(off), c.Stats().BytesReceived, "every byte sent into the window taken")
	t.Logf("%d of the ACKs moved the edge left by less than a unit", receded)
}

// The receive path allocates nothing per segment with the ACK rules:
// delayed ACKs (the timer started and fired), ACKs of two full
// segments, window updates from reads.
func TestReceiveNoAllocs(t *testing.T) {
	s, p, c, iss, off := pastQuickACKs(t)
	readAll(t, c)
	const runs = 100
	segs := make([][]byte, 0, 3*(runs+1))
	for range 3 * (runs + 1) {
		n := 1460
		if len(segs)%3 == 2 {
			n = 100
		}
		segs = append(segs, p.encode(t, dataSeg(iss, off, n)))
		off += n
	}
	out, buf := make([]byte, bufLen), make([]byte, 8192)
	drain := func() {
		for {
			if _, ok := s.tb.Output(s.now, out); !ok {
				return
			}
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		for range 3 { // two full segments, at once; a small one, delayed
			s.tb.Input(s.now, p.remote.Addr(), p.local.Addr(), segs[i])
			i++
			drain()
		}
		s.now += 40 * time.Millisecond
		s.tb.RunTimers(s.now)
		drain()
		_, _ = c.Read(buf)
		drain()
	})
	assert.Zero(t, allocs)
	assert.Equal(t, uint64(off), c.Stats().BytesReceived)
}
