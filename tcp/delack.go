package tcp

import "time"

// When received data is acknowledged (RFC 9293 3.8.6.3, RFC 5681 4.2,
// RFC 1122 4.2.3.2), with the rules of Linux's tcp_input.c, fitted to the
// poller's batches: Output runs after a whole batch of input, so the ACKs
// a batch's segments ask for leave as one, at the batch's end, covering
// all of them.
//
//   - At once (ackNow): out-of-order data (each such segment its own
//     duplicate ACK, RFC 5681 4.2), a segment that fills a hole in part
//     or in full (4.2), a D-SACK due (RFC 2883), data that did not fit,
//     the first segments of a connection (quick-ACK, below), a full-size
//     segment, and more than a full segment's worth unacknowledged
//     (Linux's rcv_nxt − rcv_wup > rcv_mss in __tcp_ack_snd_check). So
//     every batch with a full-size segment in it has its ACK, which is
//     "at least every second full-size segment" (RFC 5681 4.2) and more.
//     Inside a batch there is no ACK per second segment: the segments
//     came in one instant, and ACKs for parts of them would leave in the
//     same instant as the batch's own, telling the sender nothing it
//     does not learn from the one (which counts bytes, RFC 3465, not
//     ACKs). Linux's GRO does the same, one ACK per coalesced run of up to
//     64 KB. Linux lets a lone full segment wait for a second one; done
//     here, that cost 5 % of the goodput at 1 % loss in the virtual-time
//     bottleneck (fastpath's BenchmarkSimGoodput, loss1: 14.95 → 14.18
//     Mbit/s, RTOs 8.0 → 10.3 per flow), and a batch of one full segment
//     is what a slow flow's every batch is, so it keeps its ACK.
//   - Delayed (the delayed-ACK timer, delAckTimeout): a batch of small
//     segments that leaves less than a full one unacknowledged, such as a
//     single small segment. A segment we send before the timer fires
//     carries the ACK (a reply piggybacks it), and stops the timer; the
//     timer is never pushed back by later segments, so no ACK waits
//     longer than delAckTimeout.
//   - Window updates (windowUpdateDue): at once when reading opens the
//     window by at least two segments or doubles it, so from a closed
//     window any opening that receiver silly window avoidance allows.
const (
	// delAckTimeout bounds how long an ACK waits: Linux's TCP_ATO_MIN
	// (and TCP_DELACK_MIN), 40 ms, well inside RFC 5681 4.2's 500 ms.
	// Linux stretches its delay with the gaps between segments (ato, up
	// to 200 ms); a fixed 40 ms keeps the wait short and predictable.
	delAckTimeout = 40 * time.Millisecond
	// maxQuickAcks is Linux's TCP_MAX_QUICKACKS: how many ACKs at most
	// go at once, unconditionally, when data starts to flow.
	maxQuickAcks = 16
	// initRcvMSS is the size of the peer's segments assumed until some
	// come: Linux's TCP_MSS_DEFAULT, RFC 9293 3.7.1's default of 536.
	initRcvMSS = 536
)

// ackInOrder takes the ACK due for an in-order segment of size payload
// bytes, all of it stored: at once, or by the delayed-ACK timer. filled
// says it joined out-of-order data (a hole filled, in part or in full).
func (c *Conn) ackInOrder(size int, filled bool) {
	t := c.t
	// Linux's tcp_measure_rcv_mss, growing only: the largest segment seen
	// is the peer's full size.
	if size > c.rcvMSS {
		c.rcvMSS = min(size, t.mssSelf)
	}
	// Linux's tcp_event_data_recv: quick ACKs for the first data, and
	// again after a silence longer than the RTO, when the sender starts
	// over from a small window and each ACK it waits for costs it a
	// round trip of growth.
	if !c.dataSeen || t.now-c.dataAt > c.rto.RTO() {
		c.enterQuickAck()
	}
	c.dataSeen, c.dataAt = true, t.now
	switch {
	case filled, c.dsackDue, c.quickAcks > 0, size >= c.rcvMSS, int(c.rcvNxt.Sub(c.lastAckSent)) > c.rcvMSS:
		c.ackNow = true
	case !c.dackTm.Active():
		t.wheel.Schedule(&c.dackTm, t.now+delAckTimeout)
	}
}

// enterQuickAck lets the next ACKs go at once: Linux's tcp_incr_quickack,
// one per two segments of the window last advertised (RCV.WND/(2×MSS)),
// at least 2 and at most maxQuickAcks. Linux counts on a first window of
// about 64 KB, 16 at 1460 bytes a segment: enough to take the sender's
// slow start out of its first round trips, where a delayed ACK would
// stall a sender whose whole window is a segment or two.
func (c *Conn) enterQuickAck() {
	q := int(max(0, c.rcvAdv.Sub(c.lastAckSent))) / (2 * c.rcvMSS)
	if q == 0 {
		q = 2
	}
	c.quickAcks = max(c.quickAcks, uint8(min(q, maxQuickAcks)))
}

// ackSent notes that a segment carrying our ACK is going out: no ACK is
// due any more, the delayed-ACK timer stops, and one quick ACK is used
// if it acknowledges new data (Linux's tcp_dec_quickack_mode).
func (c *Conn) ackSent() {
	if c.quickAcks > 0 && c.rcvNxt != c.lastAckSent {
		c.quickAcks--
	}
	c.ackNow = false
	c.t.wheel.Stop(&c.dackTm)
}

// delayedACKTimeout runs when the delayed-ACK timer fires: the ACK goes.
func (c *Conn) delayedACKTimeout() {
	c.ackNow = true
	c.t.wantOutput(c)
}

// windowUpdateDue reports whether the window to advertise now opens so
// much on the one last advertised that it is worth an ACK of its own:
// by at least two segments, or to twice its size (Linux's tcp_cleanup_rbuf
// sends one when the window doubles; BSD when it grows by two segments).
// From a closed window, any opening qualifies, which windowToAdvertise
// allows only once receiver silly window avoidance does. A window that
// grew only by rounding up to the scale's unit is not news.
func (c *Conn) windowUpdateDue() bool {
	cur := uint32(max(0, c.rcvAdv.Sub(c.rcvNxt)))
	next := c.windowToAdvertise()
	return next > cur && (next-cur >= 2*uint32(c.rcvMSS) || (next >= 2*cur && next-cur >= 1<<c.rcvShift))
}
