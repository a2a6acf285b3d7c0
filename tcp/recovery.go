package tcp

import (
	"math"
	"time"
)

// maxCwnd bounds the congestion window: the largest window a peer can
// offer (RFC 7323 2.3), so duplicate ACKs (which inflate it) cannot wrap
// it around.
const maxCwnd = 1 << 30

// startWindow sets the window when the connection is established: the
// initial window (RFC 6928), or one segment if the SYN or SYN,ACK had to
// be resent (RFC 5681 3.1, RFC 6928 2), and ssthresh arbitrarily high.
// NewReno's recover starts at the ISS (RFC 6582 3.2 step 1).
func (c *Conn) startWindow() {
	smss := c.smss()
	c.win = window{cwnd: initialWindow(smss), ssthresh: math.MaxUint32}
	if c.stats.Timeouts > 0 {
		c.win.cwnd = smss
	}
	c.inRecovery, c.recover, c.idleAt = false, c.iss, c.t.now
	c.maxFlight, c.flightSeq = 0, c.iss
}

// dupAck takes a duplicate ACK (RFC 5681 2). The third enters fast
// retransmit and fast recovery (RFC 5681 3.2, RFC 6582 3.2), unless it
// covers no more than recover (RFC 6582's highest sequence number sent,
// here one past it: SND.MAX at the time): then the duplicates are of
// segments a timeout or an earlier recovery resent, not news of a loss.
// With SACK only the count is kept: RACK and pipe decide (sackACK).
func (c *Conn) dupAck() {
	smss := c.smss()
	c.dupAcks++
	switch {
	case c.sackRecovery():
		c.t.wantOutput(c)
	case c.inRecovery:
		// RFC 5681 3.2 step 4: each further duplicate ACK means a segment
		// left the network: cwnd grows by one SMSS so another may go.
		c.win.cwnd = min(c.win.cwnd+smss, maxCwnd)
		c.t.wantOutput(c)
	case c.dupAcks == dupThresh && c.recover.LessEq(c.sndUna):
		// Steps 2 and 3: ssthresh from the algorithm, the lost segment
		// resent, and cwnd = ssthresh + 3*SMSS for the three segments
		// the duplicates say arrived.
		c.enterRecovery()
		c.t.stats.RenoRecovery++
		c.win.cwnd = min(c.win.ssthresh+3*smss, maxCwnd)
		c.fastRetransmit = true
		c.t.wantOutput(c)
	case c.dupAcks < dupThresh:
		c.t.wantOutput(c) // limited transmit (sendRoom)
	}
}

// enterRecovery starts a fast recovery, NewReno's or SACK's: ssthresh
// from the algorithm, until SND.MAX is acknowledged (RFC 6582's recover,
// RFC 6675's RecoveryPoint). The window before is kept, should the
// retransmissions prove needless (undo).
func (c *Conn) enterRecovery() {
	c.undo = undoState{armed: true, cwnd: c.win.cwnd, ssthresh: c.win.ssthresh, tsval: c.tsVal(), eifel: c.ts}
	c.cc.onLoss(&c.win, c.t.now, uint32(c.sndMax.Sub(c.sndUna)), c.smss())
	c.recover, c.inRecovery = c.sndMax, true
}

// prrState is RFC 6937's Proportional Rate Reduction, for one recovery:
// the bytes delivered to the receiver and sent by us since it began, and
// the flight at its start.
type prrState struct {
	delivered, out, recoverFS uint32
}

// recoveryStep enters SACK-based fast recovery once RACK (or the
// duplicate ACKs) marked a segment lost, unless the loss is of data sent
// before the last recovery or timeout ended (recover), as for NewReno;
// then sizes the sending during recovery with PRR for the delivered
// bytes of this ACK.
func (c *Conn) recoveryStep(delivered uint32) {
	if c.recs.lost > 0 && !c.inRecovery && c.recover.LessEq(c.sndUna) {
		c.enterRecovery()
		c.t.stats.SackRecovery++
		c.stats.SACKRecoveries++
		c.prr = prrState{recoverFS: uint32(c.sndMax.Sub(c.sndUna))}
	}
	if c.inRecovery {
		c.prrACK(delivered)
	}
}

// prrACK is RFC 6937 3's per-ACK step with its slow start reduction
// bound (PRR-SSRB): while pipe is above ssthresh, sending follows
// delivery in proportion ssthresh/RecoverFS; below it, it regains
// ssthresh at most one SMSS faster than delivery. The first
// retransmission of a recovery goes whatever PRR says (Linux's
// tcp_cwnd_reduction, so a recovery entered by the reorder timer, which
// delivers nothing, still repairs). cwnd becomes pipe plus what may be
// sent, so the sender's one window check (sendRoom) applies it.
func (c *Conn) prrACK(delivered uint32) {
	p := &c.prr
	p.delivered += delivered
	pipe, ss, smss := int64(c.pipe()), int64(c.win.ssthresh), int64(c.smss())
	var sndcnt int64
	if pipe > ss {
		fs := max(int64(p.recoverFS), 1)
		sndcnt = (int64(p.delivered)*ss+fs-1)/fs - int64(p.out)
	} else {
		sndcnt = min(ss-pipe, max(int64(p.delivered)-int64(p.out), int64(delivered))+smss)
	}
	if p.out == 0 {
		sndcnt = max(sndcnt, smss)
	}
	c.win.cwnd = uint32(min(pipe+max(sndcnt, 0), maxCwnd))
}

// ackedWindow takes an ACK of n new bytes, up to ack. In fast recovery a
// partial ACK (short of recover) resends the next hole at once and
// deflates cwnd by what it acknowledged (RFC 6582 3.2 step 5); a full
// ACK ends the recovery with cwnd = ssthresh, step 6's second option, as
// Linux ends its reductions. (The first, min(ssthresh, FlightSize +
// SMSS), sends no burst, but after a full ACK the flight is mostly
// small, and slow-starting back from there cost the pipe link's goodput
// table 40 % at 1 % loss: 1.32 against 2.23 MB/s.) Outside recovery the
// algorithm grows the window.
//
// rtt is the ACK's round-trip sample, if sampled, for HyStart++.
func (c *Conn) ackedWindow(seg *segment, n uint32, rtt time.Duration, sampled bool) {
	smss := c.smss()
	ack := seg.ack
	if c.undo.eifel && n > 0 {
		// The Eifel detection (RFC 3522 2): the first ACK of new data
		// since the fast retransmit echoes a TSval older than the
		// retransmission's, so the original arrived: reordering, not
		// loss.
		c.undo.eifel = false
		if seg.opts.HasTimestamps && tsBefore(seg.opts.TSEcr, c.undo.tsval) {
			// The original came after the segments that drew the
			// duplicate ACKs: that many out of order.
			c.noteReordering(uint32(c.dupAcks))
			c.undoReduction()
		}
	}
	switch {
	case n == 0: // our SYN
	case c.inRecovery && ack.LessThan(c.recover) && c.sackRecovery():
		// A partial ACK: PRR sizes the sending (recoveryStep).
	case c.inRecovery && ack.LessThan(c.recover):
		c.fastRetransmit = true
		c.win.cwnd -= min(c.win.cwnd, n)
		if n >= smss {
			c.win.cwnd += smss
		}
		c.win.cwnd = max(c.win.cwnd, smss)
	case c.inRecovery:
		c.inRecovery = false
		c.win.cwnd = c.win.ssthresh
		c.updateReoWnd(true)
	default:
		if c.recover.LessThan(ack) {
			// recover trails SND.UNA once passed, so the wrap-safe
			// comparison above holds however long the connection lives.
			c.recover = ack
		}
		acked := n
		if !c.cwndValidated() {
			acked = 0
		}
		srtt, _ := c.rto.SRTT()
		c.cc.onAck(&c.win, ackEvent{now: c.t.now, acked: acked, smss: smss, srtt: srtt, rtt: rtt, hasRTT: sampled,
			una: ack, nxt: c.sndNxt, paced: c.pace.on, stats: &c.stats, tstats: &c.t.stats})
		c.win.cwnd = min(c.win.cwnd, maxCwnd)
	}
}

// timeoutWindow is the window after a retransmission timeout: ssthresh
// from the algorithm, cwnd the loss window of one segment (RFC 5681 3.1),
// and recover at SND.MAX (RFC 6582 3.2 step 4 and 4), so the duplicate
// ACKs that what the receiver already held draws do not start a fast
// retransmit. Going back N with the whole window resent at once copied
// what the receiver mostly had, and the duplicate ACKs those copies drew
// reached a connection the first ACK had already closed: RSTs (issue 9).
func (c *Conn) timeoutWindow(first bool) {
	if !c.synAcked {
		return // the SYN's: the window starts when it is acknowledged
	}
	smss := c.smss()
	c.undo.armed, c.undo.eifel = false, false
	c.cc.onRTO(&c.win, c.t.now, uint32(c.sndMax.Sub(c.sndUna)), smss, first)
	c.win.cwnd, c.win.acked = smss, 0
	c.inRecovery, c.recover = false, c.sndMax
}

// undoState is the window before the last fast recovery, for undoing
// the reduction when the retransmissions prove needless: by the
// timestamp echo (eifel, tsval) or by a D-SACK for every retransmission
// (retrans, RFC 3708 as Linux's undo_retrans). It lasts until the next
// loss, since a D-SACK may come after the recovery ended.
type undoState struct {
	armed          bool
	eifel          bool // the first ACK of new data is yet to be checked
	cwnd, ssthresh uint32
	tsval          uint32 // our TSval on the fast retransmit
	retrans        int    // retransmissions of the episode no D-SACK has shown needless
}

// dsackReceived takes a D-SACK (RFC 2883): the peer got something twice. When
// it has now reported every retransmission of the last recovery, none
// was needed (RFC 3708 3.2), and the reduction is undone.
func (c *Conn) dsackReceived() {
	if c.undo.armed && c.undo.retrans > 0 {
		// The original arrived after all: reordering, which RACK's
		// window must now allow for (Linux takes a D-SACK of a
		// retransmission as reordering too, tcp_sacktag_one), by how
		// much unknown.
		c.stats.SpuriousRetransmits++
		c.noteReordering(0)
		c.undo.retrans--
		if c.undo.retrans == 0 {
			c.undoReduction()
		}
	}
}

// undoReduction restores the window from before the recovery, ending it,
// as Linux's tcp_undo_cwnd_reduction (RFC 3522 and RFC 4015's response
// in short): a window halved for every reordering would keep a sender
// on a reordering path slow for good.
func (c *Conn) undoReduction() {
	c.win.cwnd = max(c.win.cwnd, c.undo.cwnd)
	c.win.ssthresh = max(c.win.ssthresh, c.undo.ssthresh)
	c.inRecovery, c.undo.armed, c.undo.eifel = false, false, false
	// The recovery was needless: a loss found from now on, even of data
	// sent before it began, is news (recover, RFC 6582's guard).
	c.recover = c.sndUna
	c.stats.UndoneReductions++
	c.t.stats.Undo++
	c.t.wantOutput(c)
}

// restartWindow is RFC 5681 4.1's restart after idle: sending resumes
// with nothing in flight after more than an RTO, so the ACK clock is
// gone and cwnd shrinks to min(IW, cwnd), as Linux's
// tcp_slow_start_after_idle.
func (c *Conn) restartWindow() {
	idle := c.t.now - c.idleAt
	if idle <= c.rto.RTO() {
		return
	}
	c.cc.onIdle(idle)
	c.win.cwnd = min(c.win.cwnd, initialWindow(c.smss()))
	c.idleAt = c.t.now
}

// noteFlight keeps the most in flight over the current window of data
// after a segment went out, as Linux's tcp_cwnd_validate keeps
// max_packets_out: a window ends once SND.UNA passes SND.NXT of when it
// began, and the next starts from the flight then.
func (c *Conn) noteFlight() {
	flight := uint32(c.sndNxt.Sub(c.sndUna))
	if !c.sndUna.LessThan(c.flightSeq) || flight > c.maxFlight {
		c.maxFlight, c.flightSeq = flight, c.sndNxt
	}
}

// cwndValidated is congestion window validation (RFC 7661): cwnd grows
// only while the flight of the last window of data (our measure of 4.1's
// pipeACK, the data acknowledged in a round trip) used more than half of
// it, as Linux's tcp_is_cwnd_limited in slow start (cwnd below twice the
// most in flight; RFC 7661's validated phase begins at exactly half).
// Linux's congestion avoidance asks more (the sender stopped on a full
// cwnd). A sender held back by its app or the peer's window so keeps a
// cwnd of at most twice what it uses, not one grown by every ACK to what
// the path never carried. The other half of RFC 7661, a cwnd shrunk
// after a long non-validated phase, is RFC 5681 4.1's restart after idle
// here (restartWindow).
func (c *Conn) cwndValidated() bool { return uint64(c.win.cwnd) < 2*uint64(c.maxFlight) }

// sendRoom is how many more bytes the congestion window lets go. With
// SACK: cwnd less pipe (RFC 6675 5, which also covers limited transmit:
// SACKed data leaves pipe). Without: cwnd less what is in flight, and,
// on the first two duplicate ACKs, one segment more for each (RFC 3042's
// limited transmit), so that a small window still draws the third
// duplicate ACK rather than wait for a timeout.
func (c *Conn) sendRoom() int {
	if c.sackRecovery() {
		return int(c.win.cwnd) - int(c.pipe())
	}
	wnd := c.win.cwnd
	if !c.inRecovery {
		wnd += uint32(min(c.dupAcks, 2)) * c.smss()
	}
	return int(wnd) - int(c.sndNxt.Sub(c.sndUna))
}

// CongestionWindow is the congestion window and slow start threshold in
// bytes, and whether fast recovery is on (RFC 5681, RFC 6582).
func (c *Conn) CongestionWindow() (cwnd, ssthresh uint32, recovery bool) {
	return c.win.cwnd, c.win.ssthresh, c.inRecovery
}
