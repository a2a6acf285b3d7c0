package tcp

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Tail Loss Probe (RFC 8985 7). When the last segments of a flight are
// lost, no ACK comes back to start a fast retransmit, and only the RTO,
// 200 ms or more, would resend them. TLP sends one probe about two round
// trips after the last transmission instead: new data if there is some,
// else the last segment sent again. Its ACK draws the SACK blocks or
// duplicate ACKs that start a fast recovery, or shows it repaired the
// loss itself.
//
// The probe timer (PTO) takes the place of the RTO on the connection's one
// timer while it runs, and the RTO is re-armed when it fires (7.3), so a
// lost probe still ends in the RTO. At most one probe is out at a time:
// the next waits until its episode is decided (7.4) and a new RTT sample
// came (7.3).
//
// TLP runs with and without SACK. Linux's needs SACK, and RFC 8985 leans
// on SACK and RACK for a loss below the probe; but resending the last
// segment repairs a lost tail without them (a request's or response's
// last segment, the case that costs the most: nothing follows it), and a
// probe of new data without SACK draws a duplicate ACK that, with limited
// transmit's segments after it (RFC 3042), makes the three of a fast
// retransmit. The repaired loss is told from a needless probe by a
// D-SACK, or without SACK by the duplicate ACK the needless copy draws,
// as 7.4's TLP_process_ack does.

// The PTO's allowance for the peer's delayed ACK (7.2's max_ack_delay,
// which the RFC leaves to the implementation). With more than one segment
// out, 2 ms, Linux's TCP_TIMEOUT_MIN: a receiver acknowledges every
// second segment at once. With one segment out the receiver may hold its
// ACK for its delayed-ACK timer, and the allowance is that timer's worst
// case as a Linux receiver bounds it (tcp_send_delayed_ack): its ATO is
// held to its RTT estimate but never below TCP_DELACK_MIN, 40 ms, nor
// above TCP_DELACK_MAX, 200 ms; so max(40 ms, SRTT), at most 200 ms. (This
// stack's receiver holds one 40 ms at most, delack.go.) Linux's sender allows
// TCP_RTO_MIN, 200 ms, there (the old drafts' WCDelAckT), which puts the
// probe past the RTO nearly always: a lost last segment, which after the
// ACK of the rest is the one segment out, would still cost an RTO's wait.
// A probe that comes before a delayed ACK after all costs one segment,
// and its D-SACK or duplicate ACK shows it needless (7.4).
const (
	probeAckDelay = 2 * time.Millisecond
	delAckMin     = 40 * time.Millisecond
	delAckMax     = 200 * time.Millisecond
)

// lossProbe is a connection's TLP state (RFC 8985 7).
type lossProbe struct {
	due bool // the PTO fired: the probe goes with the next output
	// sentFlight is FlightSize when new data last went: the flight a
	// lost last segment belonged to.
	sentFlight uint32
	// The probe out, its episode undecided (7.4): TLP.end_seq is end,
	// TLP.is_retrans retrans; start is its first sequence number, for a
	// D-SACK of it; flight the sentFlight of the loss it may repair, for
	// the response.
	out        bool
	retrans    bool
	start, end Seq
	flight     uint32
	samples    uint64 // the RTT samples taken before it went (7.3's second condition)
}

// recovering reports whether a fast recovery or a timeout's go-back-N is
// under way: until SND.UNA passes recover, SND.MAX when it began (RFC
// 6582).
func (c *Conn) recovering() bool { return c.sndUna.LessThan(c.recover) }

// mayProbe reports whether a loss probe may be scheduled (7.2, 7.3): data
// in flight and the RTO running for it (not RACK's reorder timer, which
// has a loss in hand); the peer's window open (a closed
// one is the persist timer's, and what the RTO resends into it probes
// it); no recovery, no duplicate ACKs or SACKed data (RACK.segs_sacked),
// which have their own means (limited transmit, fast retransmit); no
// probe out; and an RTT sample since the last probe, without which the
// PTO is a guess.
func (c *Conn) mayProbe() bool {
	_, measured := c.rto.SRTT()
	return !c.t.cfg.NoTLP && c.synAcked && (c.timerKind == timerRetransmit || c.timerKind == timerLossProbe) &&
		c.sndUna != c.sndMax && c.sndNxt == c.sndMax && c.sndWnd != 0 && !c.recovering() &&
		c.dupAcks == 0 && c.scoreboard.n == 0 && !c.tlp.out &&
		measured && c.rto.samples != c.tlp.samples
}

// probeTimeout is 7.2's PTO: two smoothed round trips and the peer's
// delayed ACK.
func (c *Conn) probeTimeout() time.Duration {
	srtt, _ := c.rto.SRTT()
	if uint32(c.sndMax.Sub(c.sndUna)) <= c.smss() {
		return 2*srtt + min(max(delAckMin, srtt), delAckMax)
	}
	return 2*srtt + probeAckDelay
}

// sentNewData notes that new data went, which (re)starts the probe timer
// (7.2), unless it was the probe.
func (c *Conn) sentNewData() {
	c.tlp.sentFlight = uint32(c.sndMax.Sub(c.sndUna))
	c.scheduleProbe()
}

// scheduleProbe (re)starts the probe timer in the RTO's place, after new
// data went or an ACK of new data came (7.2): at the PTO, or at the RTO's
// time if that is sooner. The RTO's deadline is kept for that cap.
func (c *Conn) scheduleProbe() {
	if !c.mayProbe() {
		return
	}
	if c.timerKind == timerRetransmit {
		c.rtoAt = c.tm.When()
	}
	at := min(c.t.now+c.probeTimeout(), c.rtoAt)
	if c.timerKind == timerLossProbe && c.tm.When() == at {
		return // the segments of one burst
	}
	c.setTimer(at, timerLossProbe)
}

// probeOnACK (re)starts the probe timer after an ACK of new data (7.2),
// or gives the RTO its timer back if the ACK ended what the probe was for:
// duplicate ACKs or SACK blocks came, a recovery began, the window shut.
func (c *Conn) probeOnACK(advanced bool) {
	switch {
	case c.timerKind == timerLossProbe && !c.mayProbe():
		c.setTimer(c.rtoAt, timerRetransmit)
	case advanced:
		c.scheduleProbe()
	}
}

// lossProbeFired is the PTO's expiry (7.3): the probe goes with the next
// output, and the RTO is re-armed from now, whether or not a probe can go,
// so that it stays the last resort.
func (c *Conn) lossProbeFired() {
	if c.t.cfg.Trace != nil {
		c.trace(Event{Kind: EventTLP})
	}
	c.setTimer(c.t.now+c.timeout(), timerRetransmit)
	c.tlp.due = true
	c.t.wantOutput(c)
}

// sendProbe writes the loss probe into b, or returns 0 (7.3's
// TLP_send_probe): a new segment if there is unsent data and the peer's
// window takes it (cwnd aside: the flight may pass it by a segment until
// the next ACK), else the last segment sent, the highest sequence numbers
// (up to maxPayload before SND.MAX, and our FIN if it went).
func (c *Conn) sendProbe(b []byte, maxPayload int) int {
	c.tlp.due = false
	if !c.mayProbe() {
		return 0 // all acknowledged, the window shut, or a recovery began meanwhile
	}
	sent := min(int(c.sndMax.Sub(c.sndUna)), c.snd.Len()) // data in flight, our FIN aside
	unsent := c.snd.Len() - sent
	room := int(int64(c.sndUna.Add(c.sndWnd).Sub(c.sndNxt)))
	seq, n := c.sndNxt, max(0, min(unsent, room, maxPayload))
	flags := uint8(wire.TCPFlagACK)
	if n > 0 {
		if c.finQueued && n == unsent {
			flags |= wire.TCPFlagFIN
		}
		c.markPush(&flags, n, unsent, n == room && n < maxPayload)
	} else {
		n = min(maxPayload, sent)
		seq = c.sndUna.Add(uint32(sent - n))
		if c.finQueued && c.sndMax == c.finSeq().Add(1) {
			flags |= wire.TCPFlagFIN
		}
		if n > 0 && seq.Add(uint32(n)) == c.finSeq() {
			flags |= wire.TCPFlagPSH // as the segment that emptied the queue had
		}
	}
	end := seq.Add(uint32(n))
	if flags&wire.TCPFlagFIN != 0 {
		end = end.Add(1)
	}
	if end == seq {
		return 0
	}
	p := &c.tlp
	p.out, p.retrans, p.start, p.end = true, seq.LessThan(c.sndMax), seq, end
	if c.timerKind == timerLossProbe {
		// An ACK of new data between the PTO and this output restarted
		// the probe timer; with the probe out, the RTO is the timer.
		c.setTimer(c.rtoAt, timerRetransmit)
	}
	p.flight, p.samples = p.sentFlight, c.rto.samples
	c.stats.TLPProbes++
	if p.retrans {
		c.stats.TLPRetransmits++
	}
	c.t.stats.TCPLossProbes++
	c.rexmitCause = CauseTLP
	return c.emit(b, seq, n, flags)
}

// lossProbeACK decides the probe's episode from an acceptable ACK (7.4.2's
// TLP_process_ack), before the ACK's other processing, as Linux's
// tcp_process_tlp_ack runs before the window grows: once the ACK covers
// the probe, a probe of new data, or one whose copy a D-SACK or a
// duplicate ACK shows needless, ends it; an ACK past a resent probe with
// neither shows the probe repaired a loss, and the window is reduced.
// The ACK of the probe itself may be the original's, with the probe's
// D-SACK or duplicate ACK to follow: that one decides nothing.
func (c *Conn) lossProbeACK(seg *segment) {
	p := &c.tlp
	if !p.out || seg.ack.LessThan(p.end) {
		return
	}
	switch {
	case c.recovering():
		// A fast recovery or a timeout came since: its reduction is the
		// response to the loss.
	case !p.retrans:
		// New data, delivered: a loss before it is for fast retransmit.
	case c.sack && c.dsackCovers(seg, p.start, p.end):
		// The original and the probe both arrived.
	case p.end.LessThan(seg.ack):
		c.lossProbeRepaired()
	case seg.ack == c.sndUna && len(seg.payload) == 0 && !seg.has(wire.TCPFlagFIN) &&
		seg.opts.NSACK == 0 && seg.wnd<<c.sndShift == c.sndWnd:
		// A duplicate ACK without SACK: the probe came after the
		// original.
	default:
		return
	}
	p.out = false
}

// dsackCovers reports whether seg's D-SACK reports any of [start, end)
// received twice.
func (c *Conn) dsackCovers(seg *segment, start, end Seq) bool {
	b, ok := dsackBlock(seg)
	return ok && Seq(b.Left).LessThan(end) && start.LessThan(Seq(b.Right))
}

// lossProbeRepaired is the congestion response to a loss the probe
// repaired (7.4.2): ssthresh from the algorithm and cwnd set to it, as
// Linux ends its reduction at once (tcp_init_cwnd_reduction, then
// tcp_end_cwnd_reduction). FlightSize is the one the lost segment went
// in (flight), not today's, which may be empty: Reno's max(FlightSize/2,
// 2*SMSS) of that would cut the window to two segments for one lost
// segment. A real loss ends what an earlier recovery kept for its undo.
func (c *Conn) lossProbeRepaired() {
	c.stats.TLPRecoveries++
	c.t.stats.TCPLossProbeRecovery++
	c.undo.armed, c.undo.eifel = false, false
	c.cc.onLoss(&c.win, c.t.now, c.tlp.flight, c.smss())
	c.win.cwnd, c.win.acked = c.win.ssthresh, 0
}
