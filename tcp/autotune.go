package tcp

import (
	"sync/atomic"
	"time"
)

// Buffer sizing: each connection's rings start at Config.RecvBuffer and
// SendBuffer and grow with the flow, as Linux's do, up to RecvBufferMax
// and SendBufferMax; they go back to the initial sizes when the
// connection idles; SetRecvBuffer and SetSendBuffer pin a size instead
// (SO_RCVBUF and SO_SNDBUF). Every byte allocated is charged to the
// table's Memory, whose limit stops growth (never what is allocated).
// The rings are resized on the poller's goroutine while the app's may be
// copying: see ring's doc for why that is safe without locks.

// DefaultMemoryLimit bounds the buffer memory of the tables that share a
// Memory (a stack's pollers), unless Config.MemoryLimit says otherwise:
// 256 MiB lets 40 flows reach the full 6 MiB receive window (or 25 both
// maxima), several times what one queue can fill (a 10 Gbit/s queue at
// 50 ms holds a 62.5 MB bandwidth-delay product), and it stops a
// thousand bulk flows from taking 10 GiB. Initial buffers are charged
// but never refused, so that many connections only stop growth.
const DefaultMemoryLimit = 256 << 20

// idleShrink is how long a connection whose buffers grew must go without
// receiving a segment, with everything it sent acknowledged and
// everything it received read, before its buffers go back to their
// initial (or pinned) sizes. After that long both ends' congestion
// windows have restarted (RFC 5681 4.1 after an RTO of idle; Linux's
// tcp_slow_start_after_idle), so the flow resumes from IW10, well within
// the initial buffers, and auto-tuning grows them again within a few
// round trips.
const idleShrink = time.Second

// Memory is an account of buffer memory with a limit, safe for
// concurrent use: the tables of a stack's pollers share one.
type Memory struct {
	limit int64
	used  atomic.Int64
}

// NewMemory returns an account limited to limit bytes.
func NewMemory(limit int64) *Memory { return &Memory{limit: limit} }

// Used is the bytes of buffers allocated now.
func (m *Memory) Used() int64 { return m.used.Load() }

// Limit is the bytes beyond which buffers do not grow.
func (m *Memory) Limit() int64 { return m.limit }

// charge adds n bytes (negative: frees them), whatever the limit.
func (m *Memory) charge(n int) { m.used.Add(int64(n)) }

// reserve adds n bytes if the account stays within its limit.
func (m *Memory) reserve(n int) bool {
	for {
		u := m.used.Load()
		if u+int64(n) > m.limit {
			return false
		}
		if m.used.CompareAndSwap(u, u+int64(n)) {
			return true
		}
	}
}

// rcvSpace is the receive side's measure of the app's reading rate
// (Linux's rcvq_space and rcv_rtt_est).
type rcvSpace struct {
	space int           // bytes read in the last round trip measured
	seq   uint64        // the receive ring's head when this measurement began
	at    time.Duration // when it began
	// The receiver's RTT estimate, zero until measured: from the
	// timestamps echo of full data segments (rttEcr: the last echo
	// used), or without timestamps the time one window took to arrive
	// (a measurement running until RCV.NXT passes rttSeq).
	rtt    time.Duration
	rttEcr uint32
	rttSeq Seq
	rttAt  time.Duration
}

// initialSpace starts the measurement on establishment, with Linux's
// guess of what the first round trip brings: 10 segments, or the
// window if smaller (tcp_init_buffer_space).
func (c *Conn) initialSpace() {
	c.space = rcvSpace{space: min(c.rcv.Cap(), 10*c.advmss()), seq: c.rcv.head.Load(), at: c.t.now}
}

// advmss is the payload of the full segments we expect: the MSS we
// announced less the options every segment carries (Linux's advmss).
func (c *Conn) advmss() int { return c.t.mssSelf - c.optLen() }

// rcvRTTMeasure takes an RTT sample from in-order data of n bytes, as
// Linux's tcp_rcv_rtt_measure_ts and tcp_rcv_rtt_measure: with
// timestamps, the echo of a full segment times our ACK's trip to the
// sender and its data's back (smoothed, gain 1/8); without them, the time
// a window's worth took to arrive bounds the RTT from above (the least
// kept).
func (c *Conn) rcvRTTMeasure(seg *segment, n int) {
	sp := &c.space
	if c.ts {
		if seg.opts.TSEcr == sp.rttEcr || n < min(c.rcvMSS, c.advmss()) {
			return
		}
		sp.rttEcr = seg.opts.TSEcr
		if rtt, ok := c.tsRTT(seg); ok {
			if sp.rtt == 0 {
				sp.rtt = rtt
			} else {
				sp.rtt += (rtt - sp.rtt) / 8
			}
		}
		return
	}
	if sp.rttAt != 0 {
		if c.rcvNxt.LessThan(sp.rttSeq) {
			return
		}
		if rtt := c.t.now - sp.rttAt; sp.rtt == 0 || rtt < sp.rtt {
			sp.rtt = max(rtt, time.Microsecond)
		}
	}
	sp.rttSeq, sp.rttAt = c.rcvAdv, c.t.now
}

// rcvSpaceAdjust is Linux's tcp_rcv_space_adjust, run when data arrives
// in order and when the app reads: once per round trip it measures what
// the app read, and if that beat the last round trip, the receive buffer
// (so the window) grows to twice it, plus 16 segments for variation, plus
// twice the growth again for a sender in slow start (whose next round
// trip brings more than this one). Before the receiver's own RTT
// estimate, the handshake's (the sender side's, RFC 6298) stands in.
// An app that does not read never grows its buffer.
func (c *Conn) rcvSpaceAdjust() {
	sp := &c.space
	rtt := sp.rtt
	if rtt == 0 {
		rtt, _ = c.rto.SRTT()
	}
	if rtt == 0 || c.t.now-sp.at < rtt || c.rcv == noRecvBuffer {
		return
	}
	head := c.rcv.head.Load()
	// Capped where it no longer changes the outcome (the target is at
	// least twice it), so a round trip inflated by a peer's echoes
	// cannot overflow the arithmetic.
	if copied := min(int(head-sp.seq), c.t.cfg.RecvBufferMax); copied > sp.space {
		if c.rcvPin == 0 {
			win := 2*copied + 16*c.advmss()
			win += 2 * (win * (copied - sp.space) / sp.space)
			if want := min(win, c.t.cfg.RecvBufferMax); want > c.rcv.Cap() {
				c.grow(c.rcv.ring, want, c.t.cfg.RecvBufferMax, c.rcv.past())
			}
		}
		sp.space = copied
	}
	sp.seq, sp.at = head, c.t.now
}

// sndbufExpand is Linux's tcp_sndbuf_expand, on an ACK of new data that
// found the send buffer full (the app waits for room): the buffer grows
// to twice the congestion window (at least 10 segments), room for a
// window in flight and one more written behind it, which fast recovery
// needs (CUBIC's 1.7 rounded up, as Linux does).
func (c *Conn) sndbufExpand() {
	if c.sndPin != 0 {
		return
	}
	want := min(2*max(int(c.win.cwnd), 10*int(c.smss())), c.t.cfg.SendBufferMax)
	if want > c.snd.Cap() {
		c.grow(c.snd, want, c.t.cfg.SendBufferMax, 0)
	}
}

// grow raises r's capacity to want (at most limit) for auto-tuning. It
// allocates only when want passes the allocated size, and then twice
// that (at most limit), so a buffer growing by small steps is copied a
// few times, not once per step. The allocation must fit the Memory's
// limit: otherwise growth stops (MemoryPressures), and what is held
// stays.
func (c *Conn) grow(r *ring, want, limit, past int) {
	t := c.t
	if size := r.size(); want > size {
		alloc := min(max(want, 2*size), limit)
		if !t.mem.reserve(alloc - size) {
			t.stats.MemoryPressures++
			return
		}
		if !r.resize(alloc, past) {
			t.mem.charge(size - alloc) // a Write came first: next time
			return
		}
		t.stats.BufferGrowths++
	}
	r.limit.Store(int64(want))
	c.idle() // the idle shrink's timer, if nothing else times the connection
}

// resizeTo makes r's allocation size bytes (and at least what it holds)
// and its room limit bytes (0: the allocation), for a pinned size or an
// idle shrink. A Write that came first on the send ring leaves the
// allocation as it was: the limit holds anyway.
func (c *Conn) resizeTo(r *ring, size, limit, past int) {
	old := r.size()
	size = max(size, r.Len()+past)
	if size != old && r.resize(size, past) {
		c.t.mem.charge(size - old)
		if size < old {
			c.t.stats.BufferShrinks++
		} else {
			c.t.stats.BufferGrowths++
		}
	}
	r.limit.Store(int64(limit))
}

// restSize is the size a connection's ring goes back to: the pinned size,
// or the initial one.
func restSize(pin, initial int) int {
	if pin > 0 {
		return pin
	}
	return roundPow2(initial)
}

// grown reports whether a ring is larger (or smaller) than its rest size:
// the idle shrink has work.
func (c *Conn) grown() bool {
	return c.rcv != noRecvBuffer && (c.rcv.size() != restSize(c.rcvPin, c.t.cfg.RecvBuffer) ||
		c.snd.size() != restSize(c.sndPin, c.t.cfg.SendBuffer))
}

// shrinkAt is when the idle shrink's timer should run: idleShrink after
// the last segment received, or after now if that has passed (the app
// has not read everything, or something was in flight).
func (c *Conn) shrinkAt() time.Duration {
	if at := c.lastRecv + idleShrink; at > c.t.now {
		return at
	}
	return c.t.now + idleShrink
}

// shrinkIdle returns an idle connection's buffers to their rest sizes
// (see idleShrink): the receive ring once the app read everything, the
// send ring once everything written is acknowledged. The receive window
// is retracted to the smaller buffer: RFC 9293 3.8.6 advises against
// shrinking a window (SHLD-14) and requires senders to cope (MUST-34);
// after idleShrink the peer sends nothing until its restarted window's
// first burst, which the initial buffer holds, and our ACK of that
// carries the new edge.
func (c *Conn) shrinkIdle() {
	if c.t.now-c.lastRecv < idleShrink || c.rcv == noRecvBuffer {
		return
	}
	cfg := &c.t.cfg
	if size := restSize(c.rcvPin, cfg.RecvBuffer); c.rcv.size() != size && c.rcv.Len() == 0 && c.rcv.ooo.n == 0 {
		c.resizeTo(c.rcv.ring, size, c.rcvPin, 0)
		if wnd := uint32(c.rcv.Cap()); uint32(max(0, c.rcvAdv.Sub(c.rcvNxt))) > wnd {
			c.rcvAdv = c.rcvNxt.Add(wnd)
		}
		c.initialSpace()
	}
	if size := restSize(c.sndPin, cfg.SendBuffer); c.snd.size() != size && c.snd.Len() == 0 {
		c.resizeTo(c.snd, size, c.sndPin, 0)
	}
}

// SetRecvBuffer pins the receive buffer, and so the window, at n bytes
// (at most Config.RecvBufferMax), as Linux's SO_RCVBUF: auto-tuning stops
// for it. Linux doubles SO_RCVBUF's value, for the sk_buff overhead its
// buffer also holds; ours holds only payload, so n is the window exactly
// (a 4,096-byte buffer takes 4,096 bytes, and not one more). A window
// already offered is not taken back (RFC 9293 3.8.6); data past the
// buffer is dropped unacknowledged. Before our SYN goes out, the window
// scale is chosen for n. The size is allocated whatever the Memory's
// limit, as initial buffers are: the app asked for it.
func (c *Conn) SetRecvBuffer(n int) {
	c.rcvPin = min(max(n, 1), c.t.cfg.RecvBufferMax)
	if c.state == SynSent && c.sndNxt == c.iss {
		c.rcvShift = windowShift(c.rcvPin)
	}
	if c.rcv != noRecvBuffer {
		c.resizeTo(c.rcv.ring, c.rcvPin, c.rcvPin, c.rcv.past())
		c.idle()
	}
}

// SetSendBuffer pins the send buffer at n bytes (at most
// Config.SendBufferMax), as Linux's SO_SNDBUF (not doubled either, see
// SetRecvBuffer): writes take no more than n bytes less what waits to be
// acknowledged.
func (c *Conn) SetSendBuffer(n int) {
	c.sndPin = min(max(n, 1), c.t.cfg.SendBufferMax)
	if c.snd != noBuffer {
		c.resizeTo(c.snd, c.sndPin, c.sndPin, 0)
		c.idle()
	}
}

// Buffers returns the receive and send buffers' capacities now.
func (c *Conn) Buffers() (rcv, snd int) { return c.rcv.Cap(), c.snd.Cap() }
