package tcp

import "time"

// Sent-segment records and RACK (RFC 8985 6), the loss detector of a
// connection that uses SACK.
//
// Every segment sent gets a record in a ring, oldest first, that covers
// SND.UNA to SND.MAX in send stream offsets (a FIN counts one past the
// data): when it last went out, and whether the peer SACKed it, RACK (or
// a timeout) marked it lost, and it was resent since. Byte counts of each
// kind give RFC 6675's pipe in O(1). The ring grows by doubling, up to
// twice the largest send buffer in full segments (a connection of small
// writes sends smaller ones); past that a segment joins the newest
// record, which is counted (SentRecordMerges): recovery then works in
// coarser pieces.
//
// RACK marks a segment lost when one sent after it was delivered and it
// has been out longer than RACK.rtt, the round trip of the most recently
// sent segment delivered, plus a reordering window (RFC 8985 6.2). With
// no reordering seen the window is a quarter of the minimum RTT, and none
// once DupThresh segments are SACKed or during recovery, which makes
// RFC 6675's "three SACKed segments" rule RACK's too (6.2 step 4). A
// D-SACK shows a retransmission needless: the window grows by a quarter
// of the minimum RTT per round trip that brings one, and shrinks back
// after 16 recoveries without (reo_wnd_mult, reo_wnd_persist). A
// segment not yet overdue arms the reorder timer for when it will be.

// Record flags.
const (
	segSACKed  = 1 << iota // the peer's SACK blocks cover all of it
	segLost                // marked lost, by RACK, three duplicate ACKs or a timeout
	segRetrans             // resent since it was first sent or last marked lost
)

// dupThresh is RFC 6675's DupThresh (and RFC 5681's three duplicates).
const dupThresh = 3

// minSentRecords is the ring's first size; growing past maxSentRecords'
// bound merges instead.
const minSentRecords = 64

// sentSeg is one sent segment's record.
type sentSeg struct {
	start, end uint64        // send stream offsets [start, end)
	at         time.Duration // when it last went out (RACK's xmit_ts)
	flags      uint8
}

func (s *sentSeg) len() uint64 { return s.end - s.start }

// sentRecords is the ring of records, and the bytes (and SACKed
// records) of each kind. retrans counts records resent and not SACKed;
// lostNew those lost and not resent since, which NextSeg resends.
type sentRecords struct {
	r                              []sentSeg // a power of two long, or nil until the first send
	head, n                        int
	sacked, lost, retrans, lostNew uint64
	nSacked                        int
	// resentEnd is the highest end of a record ever resent. Records
	// from it on went out once, in offset order, so their send times
	// grow with their offsets: RACK's walk stops at the first of them
	// sent after the segment it knows delivered.
	resentEnd uint64
}

func (s *sentRecords) at(i int) *sentSeg { return &s.r[(s.head+i)&(len(s.r)-1)] }

// account adds (sign 1) or takes out (sign -1) r's share of the counts.
func (s *sentRecords) account(r *sentSeg, sign int) {
	n := r.len() * uint64(sign) // wraps to a subtraction for -1
	if r.flags&segSACKed != 0 {
		s.sacked += n
		s.nSacked += sign
	}
	if r.flags&segLost != 0 {
		s.lost += n
		if r.flags&segRetrans == 0 {
			s.lostNew += n
		}
	}
	if r.flags&segRetrans != 0 {
		s.retrans += n
	}
}

// setFlags changes r's flags, keeping the counts. SACKed data has left
// the network: it is neither lost nor in flight as a retransmission.
func (s *sentRecords) setFlags(r *sentSeg, f uint8) {
	if f&segSACKed != 0 {
		f = segSACKed
	}
	s.account(r, -1)
	r.flags = f
	s.account(r, 1)
}

// grow doubles the ring, up to limit records; it reports whether there
// is room for one more.
func (s *sentRecords) grow(limit int) bool {
	if s.n < len(s.r) {
		return true
	}
	size := max(minSentRecords, 2*len(s.r))
	if size > roundPow2(limit) {
		return false
	}
	r := make([]sentSeg, size)
	for i := range s.n {
		r[i] = *s.at(i)
	}
	s.r, s.head = r, 0
	return true
}

// push records a new segment [start, end) sent at now; with the ring at
// its limit, the newest record takes it in, and push reports false.
func (s *sentRecords) push(start, end uint64, now time.Duration, limit int) bool {
	if !s.grow(limit) { // full, so not empty
		last := s.at(s.n - 1)
		s.account(last, -1)
		last.end, last.at, last.flags = end, now, 0
		s.account(last, 1)
		return false
	}
	*s.at(s.n) = sentSeg{start: start, end: end, at: now}
	s.n++
	return true
}

// search is the index of the first record that ends after off (a binary
// search: the records are sorted and apart).
func (s *sentRecords) search(off uint64) int {
	lo, hi := 0, s.n
	for lo < hi {
		m := (lo + hi) / 2
		if s.at(m).end > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// split cuts record i at off, inside it, into two with the same flags and
// time, if the ring has room (or can grow to have it).
func (s *sentRecords) split(i int, off uint64, limit int) bool {
	if !s.grow(limit) {
		return false
	}
	for j := s.n; j > i+1; j-- {
		*s.at(j) = *s.at(j - 1)
	}
	s.n++
	a, b := s.at(i), s.at(i+1)
	s.account(a, -1)
	*b = *a
	a.end, b.start = off, off
	s.account(a, 1)
	s.account(b, 1) // a SACKed record counts twice now
	return true
}

// cut splits the records that [from, to) starts or ends inside, where it
// can, and returns the range of records [i, j) it touches.
func (s *sentRecords) cut(from, to uint64, limit int) (i, j int) {
	i = s.search(from)
	if i < s.n && s.at(i).start < from && s.split(i, from, limit) {
		i++
	}
	j = s.search(to)
	if j < s.n && s.at(j).start < to {
		s.split(j, to, limit) // or, for want of room, all of it
		j++
	}
	return i, j
}

// pop drops the oldest record.
func (s *sentRecords) pop() {
	s.account(s.at(0), -1)
	s.head = (s.head + 1) & (len(s.r) - 1)
	s.n--
}

// trimFront cuts the oldest record to start at off, the new SND.UNA, if
// it straddles it.
func (s *sentRecords) trimFront(off uint64) {
	if s.n == 0 {
		return
	}
	if r := s.at(0); r.start < off {
		s.account(r, -1)
		r.start = off
		s.account(r, 1)
	}
}

// rackState is RFC 8985's per-connection RACK state (6.1), in send
// stream offsets.
type rackState struct {
	xmitAt        time.Duration // RACK.xmit_ts: the latest send time of a delivered segment
	endSeq        uint64        // RACK.end_seq: its end
	rtt           time.Duration // RACK.rtt: its round trip
	fack          uint64        // RACK.fack: the highest end delivered
	reoWndMult    int           // RACK.reo_wnd_mult, from 1
	reoWndPersist int           // RACK.reo_wnd_persist
	dsackRound    bool          // RACK.dsack_round is set, to dsackRoundEnd
	dsackRoundEnd uint64
	dsack         bool // the ACK being processed carried a D-SACK
	reord         bool // and delivered data sent once below fack, from reordFrom on
	reordFrom     uint64
}

// sackRecovery reports whether the connection recovers by SACK (RFC
// 6675, RACK, PRR) rather than NewReno: both ends speak SACK, and our SYN
// is acknowledged (records start after it: a SYN or SYN,ACK that times
// out goes back to itself).
func (c *Conn) sackRecovery() bool { return c.sack && c.synAcked }

// recordLimit bounds the records: twice the largest send buffer in full
// segments (the ring grows only as far as the flight needs).
func (c *Conn) recordLimit() int {
	return max(minSentRecords, 2*c.t.cfg.SendBufferMax/int(c.smss()))
}

// pipe is RFC 6675 4's estimate of the bytes in flight: those sent and
// not acknowledged, less the SACKed and the lost, plus the resent.
func (c *Conn) pipe() uint32 {
	r := &c.recs
	return uint32(uint64(c.sndMax.Sub(c.sndUna)) - r.sacked - r.lost + r.retrans)
}

// Pipe is RFC 6675's pipe: the bytes the sender counts as in flight. A
// connection without SACK counts SND.NXT - SND.UNA.
func (c *Conn) Pipe() uint32 {
	if !c.sackRecovery() {
		return c.inFlight()
	}
	return c.pipe()
}

// noteSent records the segment [seq, end) emit sends at now: records
// for what is new, and for what is resent the time and the retransmitted
// flag (cut to its edges where the ring has room). It runs before SND.MAX
// moves.
func (c *Conn) noteSent(seq, end Seq) {
	r := &c.recs
	if c.inRecovery {
		c.prr.out += uint32(end.Sub(seq))
	}
	from, to, top := c.sndOff(seq), c.sndOff(end), c.sndOff(c.sndMax)
	if from < top {
		i, j := r.cut(from, min(to, top), c.recordLimit())
		for ; i < j; i++ {
			s := r.at(i)
			s.at = c.t.now
			r.resentEnd = max(r.resentEnd, s.end)
			if s.flags&segSACKed == 0 {
				r.setFlags(s, s.flags|segRetrans)
			}
		}
	}
	if to > top && !r.push(max(from, top), to, c.t.now, c.recordLimit()) {
		c.stats.SentRecordMerges++
	}
}

// rackDelivered is RFC 8985 6.2 steps 2 and 3 for a segment newly
// acknowledged or SACKed by seg: RACK.rtt, xmit_ts and end_seq from the
// most recently sent one, unless it was resent and the ACK may be the
// original's (its echo older than the retransmission, or a round trip
// shorter than the minimum); and reordering seen when a segment sent
// once is delivered below the highest delivered yet (reordFrom, the
// lowest such in the ACK, which sackACK reports).
func (c *Conn) rackDelivered(s *sentSeg, seg *segment) {
	k := &c.rack
	if s.end > k.fack {
		k.fack = s.end
	} else if s.end < k.fack && s.flags&segRetrans == 0 && (!k.reord || s.start < k.reordFrom) {
		k.reord, k.reordFrom = true, s.start
	}
	rtt := c.t.now - s.at
	if s.flags&segRetrans != 0 {
		if rtt < c.minRTT.get() {
			return
		}
		if c.ts && seg.opts.HasTimestamps && tsBefore(seg.opts.TSEcr, c.tsOff+uint32(s.at/tsTick)) {
			return
		}
	} else {
		// A sample for the minimum too (RFC 8985 6.2 step 1), as Linux
		// takes its SACK RTT: without it a recovery that only SACKs would
		// go by the handshake's round trip.
		c.minRTT.update(c.t.now, rtt)
	}
	if s.at > k.xmitAt || (s.at == k.xmitAt && s.end > k.endSeq) {
		k.xmitAt, k.endSeq, k.rtt = s.at, s.end, rtt
	}
}

// RACKRTT is RACK.rtt, the round trip of the most recently sent segment
// delivered, and reoWnd the reordering window: for the tail loss probe
// (RFC 8985 7.2) and the socket table.
func (c *Conn) RACKRTT() (rtt, reoWnd time.Duration) { return c.rack.rtt, c.reoWnd() }

// reoWnd is RFC 8985 6.2 step 4's RACK_reo_wnd. RACK.min_RTT is the
// connection's (minrtt.go), RACK.reordering_seen whether any reordering
// was (noteReordering).
func (c *Conn) reoWnd() time.Duration {
	k := &c.rack
	// In recovery: fast recovery, or after a timeout until what was
	// out then is acknowledged (recover, timeoutWindow).
	if c.stats.ReorderSeen == 0 && (c.inRecovery || c.sndUna.LessThan(c.recover) || c.recs.nSacked >= dupThresh) {
		return 0
	}
	srtt, _ := c.rto.SRTT()
	return min(time.Duration(max(1, k.reoWndMult))*c.minRTT.get()/4, srtt)
}

// updateReoWnd is RACK_update_reo_wnd (6.2 step 4): a D-SACK grows the
// window once per round trip, and 16 recoveries without one shrink it
// back (called on each recovery's end, exiting).
func (c *Conn) updateReoWnd(exiting bool) {
	k := &c.rack
	una := c.sndOff(c.sndUna)
	if k.dsackRound && una >= k.dsackRoundEnd {
		k.dsackRound = false
	}
	switch {
	case k.dsack && !k.dsackRound:
		k.dsackRound, k.dsackRoundEnd = true, c.sndOff(c.sndMax)
		k.reoWndMult = max(1, k.reoWndMult) + 1
		k.reoWndPersist = 16
	case exiting:
		if k.reoWndPersist--; k.reoWndPersist <= 0 {
			k.reoWndMult, k.reoWndPersist = 1, 0
		}
	}
	k.dsack = false
}

// rackDetectLoss is RACK_detect_loss (6.2 step 5): every segment sent
// before RACK.xmit_ts, not delivered and not lost awaiting its
// retransmission, is lost once RACK.rtt plus the reordering window has
// passed since it went out. It returns how long until the next one may
// be, or 0.
func (c *Conn) rackDetectLoss() time.Duration {
	r, k := &c.recs, &c.rack
	if r.n == 0 || k.endSeq == 0 { // nothing delivered yet
		return 0
	}
	reo := c.reoWnd()
	var wait time.Duration
	for i := range r.n {
		s := r.at(i)
		if s.at > k.xmitAt || (s.at == k.xmitAt && s.end >= k.endSeq) {
			// Not sent before the segment RACK knows delivered; nor
			// is any after it, if it went out only once. So an ACK
			// costs the records up to RACK.end_seq and the resent,
			// not the whole flight.
			if s.start >= r.resentEnd {
				break
			}
			continue
		}
		if s.flags&segSACKed != 0 || s.flags&(segLost|segRetrans) == segLost {
			continue
		}
		left := s.at + k.rtt + reo - c.t.now
		if left > 0 {
			wait = max(wait, left)
			continue
		}
		if s.flags&segRetrans != 0 {
			c.t.stats.LostRetransmit++
		}
		c.stats.RACKLost++
		r.setFlags(s, segLost)
	}
	return wait
}

// sackACK runs after an ACK's cumulative acknowledgment and SACK blocks
// were taken, delivered bytes newly acknowledged or SACKed by it: the
// reordering it showed, RACK's reordering window and loss detection and reorder timer, three duplicate ACKs without SACK
// blocks taken as the loss of the first segment (RFC 6675 5's DupAcks
// rule, for a peer that sends no blocks), then the recovery.
func (c *Conn) sackACK(delivered uint32) {
	if k := &c.rack; k.reord {
		// Out of order by as many segments as lie between the lowest
		// such and the highest delivered (Linux's
		// tcp_check_sack_reordering, once an ACK).
		smss := uint64(c.smss())
		c.noteReordering(uint32(min((k.fack-k.reordFrom+smss-1)/smss, maxReordering)))
		k.reord = false
	}
	c.updateReoWnd(false)
	if c.dupAcks >= dupThresh && c.recs.sacked == 0 && c.recs.n > 0 {
		if s := c.recs.at(0); s.flags&segLost == 0 {
			c.stats.RACKLost++
			c.recs.setFlags(s, segLost)
		}
	}
	c.armReorder(c.rackDetectLoss())
	c.recoveryStep(delivered)
}

// armReorder runs the reorder timer wait from now, in front of the
// retransmission timer (RFC 8985 6.2 step 5, RACK_detect_loss_and_arm_timer),
// and in the place of a loss probe's (RACK has the loss in hand), unless
// the RTO comes first: the timeout takes everything as lost anyway.
func (c *Conn) armReorder(wait time.Duration) {
	if wait <= 0 {
		return
	}
	switch c.timerKind {
	case timerRetransmit:
		c.rtoAt = c.tm.When()
	case timerReorder, timerLossProbe:
	default:
		return
	}
	if at := c.t.now + wait; at < c.rtoAt {
		c.setTimer(at, timerReorder)
	} else {
		c.setTimer(c.rtoAt, timerRetransmit)
	}
}

// reorderTimeout is the reorder timer (RFC 8985 6.2 step 6): the
// retransmission timer resumes, and the segments now overdue are lost.
func (c *Conn) reorderTimeout() {
	c.setTimer(c.rtoAt, timerRetransmit)
	c.armReorder(c.rackDetectLoss())
	c.recoveryStep(0)
	c.t.wantOutput(c)
}

// rtoMarkLost is RFC 6675 5.1 and RFC 8985 6.3 on a retransmission
// timeout: every segment not SACKed is lost, and what was resent is to
// be resent again; the SACKed ones are not.
func (c *Conn) rtoMarkLost() {
	r := &c.recs
	for i := range r.n {
		if s := r.at(i); s.flags&segSACKed == 0 {
			r.setFlags(s, segLost)
		}
	}
}

// nextLost is RFC 6675 NextSeg's rule 1 as RACK marks losses: the first
// record lost and not yet resent, or -1.
func (c *Conn) nextLost() int {
	r := &c.recs
	if r.lostNew == 0 {
		return -1
	}
	for i := range r.n {
		if r.at(i).flags&(segLost|segRetrans|segSACKed) == segLost {
			return i
		}
	}
	return -1
}

// recordsAcked drops the records that the cumulative ACK of seg covers,
// SND.UNA having moved: each not SACKed before is delivered now (RACK).
// With everything acknowledged, a FIN's record goes too (it ends one past
// the data, where the stream offset of SND.UNA stops).
func (c *Conn) recordsAcked(seg *segment) {
	r := &c.recs
	off := c.sndOff(c.sndUna)
	all := c.sndUna == c.sndMax
	for r.n > 0 && (all || r.at(0).end <= off) {
		if s := r.at(0); s.flags&segSACKed == 0 {
			c.rackDelivered(s, seg)
		}
		r.pop()
	}
	r.trimFront(off)
}

// sackRecords marks SACKed the records that the peer's block [from, to)
// covers whole (cut at its edges where the ring has room): each is
// delivered now (RACK).
func (c *Conn) sackRecords(from, to uint64, seg *segment) {
	r := &c.recs
	i, j := r.cut(from, to, c.recordLimit())
	for ; i < j; i++ {
		s := r.at(i)
		if s.flags&segSACKed != 0 || s.start < from || s.end > to {
			continue
		}
		c.rackDelivered(s, seg)
		r.setFlags(s, segSACKed)
	}
}

// unSACKRecords forgets what the peer SACKed, which it reneged on (RFC
// 2018 8): the data counts as in flight again.
func (c *Conn) unSACKRecords() {
	r := &c.recs
	for i := range r.n {
		if s := r.at(i); s.flags&segSACKed != 0 {
			r.setFlags(s, 0)
		}
	}
}
