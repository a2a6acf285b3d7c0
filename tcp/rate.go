package tcp

import (
	"math"
	"math/bits"
	"time"
)

// Delivery rate estimation, as draft-cheng-iccrg-delivery-rate-estimation
// (Linux's tcp_rate.c), in bytes: every data segment sent takes a
// snapshot of how much had been delivered by then and when (3.2); an ACK
// that delivers a segment makes a rate sample of what was delivered
// since its snapshot over the longer of its send and ACK phases (3.3).
//
// Linux keeps the snapshot in each skb. Here a bounded list holds the
// snapshots in send order, one per run of segments sent together: the
// segments of one burst (one round of the poller) have the same snapshot,
// so one record covers them all, and an ACK inside the run delivers part
// of it, as it would some of Linux's skbs with the same values. A run
// sent while the list is full, or a retransmission below its last
// record, takes none; an ACK's sample then comes from the latest record
// it delivers, which makes the samples fewer (up to rateRecords runs a
// round trip), not wrong: each is bytes delivered over elapsed time,
// whichever send it starts from. A retransmission takes its bytes out of
// the records: their snapshots no longer time those bytes' delivery.

// rateRecords bounds the snapshots a connection holds.
const rateRecords = 8

// rateRecord is the snapshot of a run of segments: P.delivered,
// P.delivered_time, P.first_sent_time, P.is_app_limited and their send
// time (3.2), and their range in the send stream.
type rateRecord struct {
	start, end  uint64
	sentAt      time.Duration
	firstSent   time.Duration
	deliveredAt time.Duration
	delivered   uint64
	appLimited  bool
}

// rateEstimator is a connection's delivery rate state: C.delivered,
// C.delivered_time, C.first_sent_time and C.app_limited (3.1, 3.4), the
// snapshots, and the sample Info reports.
type rateEstimator struct {
	recs        [rateRecords]rateRecord
	n           int
	delivered   uint64
	deliveredAt time.Duration
	firstSent   time.Duration
	// appLimited is the delivered count that ends the app-limited
	// bubble: once delivered passes it, the data sent while the app had
	// too little to send is all delivered. Zero when not app-limited.
	appLimited uint64
	// The sample kept: bytes over interval, and whether app-limited.
	sampleBytes      uint64
	sampleInterval   time.Duration
	sampleAppLimited bool
}

// rate is the rate sample kept, in bytes per second.
func (r *rateEstimator) rate() (uint64, bool) {
	if r.sampleInterval <= 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(r.sampleBytes, uint64(time.Second))
	if hi >= uint64(r.sampleInterval) {
		return math.MaxUint64, r.sampleAppLimited
	}
	q, _ := bits.Div64(hi, lo, uint64(r.sampleInterval))
	return q, r.sampleAppLimited
}

// rateSent takes the snapshot of a data segment of send stream offsets
// [start, end) sent now (3.2); empty says nothing was in flight before
// it.
func (c *Conn) rateSent(start, end uint64, empty, retransmit bool) {
	r := &c.rate
	now := c.t.now
	if empty {
		// Nothing in flight: the send and ACK phases start now.
		r.firstSent, r.deliveredAt = now, now
	}
	if retransmit {
		r.forget(start, end)
	}
	appLimited := r.appLimited != 0
	if r.n > 0 {
		last := &r.recs[r.n-1]
		if start < last.end {
			return // below the last record: a retransmission
		}
		if start == last.end && last.sentAt == now && last.delivered == r.delivered &&
			last.deliveredAt == r.deliveredAt && last.firstSent == r.firstSent && last.appLimited == appLimited {
			last.end = end // the same snapshot: the run grows
			return
		}
	}
	if r.n == len(r.recs) {
		return
	}
	r.recs[r.n] = rateRecord{start: start, end: end, sentAt: now, firstSent: r.firstSent,
		deliveredAt: r.deliveredAt, delivered: r.delivered, appLimited: appLimited}
	r.n++
}

// forget takes the bytes [start, end), sent again, out of the records:
// the front of a record (a fast retransmission, or going back after a
// timeout, which resends in order), its back, or all of one they cover
// or cut in two.
func (r *rateEstimator) forget(start, end uint64) {
	k := 0
	for i := range r.n {
		rec := &r.recs[i]
		switch {
		case rec.end <= start || end <= rec.start:
		case start <= rec.start && rec.end > end:
			rec.start = end
		case rec.start < start && rec.end <= end:
			rec.end = start // the back: a tail loss probe's
		default:
			continue // covered, or cut in two
		}
		r.recs[k] = *rec
		k++
	}
	r.n = k
}

// rateAcked takes an ACK (3.3): C.delivered becomes the bytes
// cumulatively acknowledged and SACKed, and the latest record the ACK
// delivers (all of it, or the front of it up to SND.UNA) gives a rate
// sample. The sample is kept if it is not app-limited or beats the one
// kept: an app-limited sample shows less than the path can do.
func (c *Conn) rateAcked() {
	r := &c.rate
	now := c.t.now
	delivered := c.stats.BytesAcked + c.scoreboard.bytesBelow(^uint64(0))
	if delivered <= r.delivered {
		return // nothing new (or the peer reneged on SACKed data)
	}
	r.delivered, r.deliveredAt = delivered, now
	if r.appLimited != 0 && delivered > r.appLimited {
		r.appLimited = 0 // the bubble is delivered (3.4)
	}
	una := c.snd.head.Load()
	var p rateRecord
	found := false
	k := 0
	for i := range r.n {
		rec := &r.recs[i]
		all := rec.end <= una || c.scoreboard.covers(span{rec.start, rec.end})
		if all || rec.start < una {
			if !found || rec.delivered > p.delivered {
				p, found = *rec, true
			}
		}
		if all {
			continue
		}
		rec.start = max(rec.start, una)
		r.recs[k] = *rec
		k++
	}
	r.n = k
	if !found {
		return
	}
	r.firstSent = p.sentAt
	// The longer of the send phase (from the first segment of the
	// flight to this one) and the ACK phase: ACK compression can make
	// the ACKs come faster than the path delivers (3.3).
	interval := max(p.sentAt-p.firstSent, now-p.deliveredAt)
	bytes := delivered - p.delivered
	if interval <= 0 || interval < c.minRTT.get() {
		// Shorter than the minimum RTT, which no delivery can beat: an
		// overestimate, as when the segment was a needless
		// retransmission and its original's ACK came early (3.3).
		return
	}
	if !p.appLimited || float64(bytes)*r.sampleInterval.Seconds() >= float64(r.sampleBytes)*interval.Seconds() {
		r.sampleBytes, r.sampleInterval, r.sampleAppLimited = bytes, interval, p.appLimited
	}
}

// checkAppLimited marks the connection app-limited when it has nothing to
// send with room to send it (3.4, Linux's tcp_rate_check_app_limited):
// less than a segment written and unsent, and less than cwnd in the
// network. The samples of what it sends until that is delivered are
// app-limited.
func (c *Conn) checkAppLimited(unsent int) {
	if unsent >= int(c.smss()) || c.fastRetransmit {
		return
	}
	if pipe := c.pipe(); pipe < c.win.cwnd {
		c.rate.appLimited = max(c.rate.delivered+uint64(pipe), 1)
	}
}
