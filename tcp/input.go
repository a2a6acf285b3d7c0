package tcp

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// segment is a received segment, parsed.
type segment struct {
	seq, ack Seq
	flags    uint8
	wnd      uint32 // the window field, unscaled
	opts     wire.TCPOptions
	payload  []byte
}

func (s *segment) has(flag uint8) bool { return s.flags&flag != 0 }

// len is the segment's length in sequence space: SYN and FIN count one
// each (RFC 9293 3.4).
func (s *segment) len() uint32 {
	n := uint32(len(s.payload))
	if s.has(wire.TCPFlagSYN) {
		n++
	}
	if s.has(wire.TCPFlagFIN) {
		n++
	}
	return n
}

// Input takes the TCP segment b (header and payload) that arrived from
// src to dst, one of our addresses, at time now. Malformed segments and
// bad checksums are counted and dropped. Input keeps no reference to b.
func (t *Table) Input(now time.Duration, src, dst netip.Addr, b []byte) {
	t.now = now
	s := wire.TCP(b)
	if s.Check() != nil {
		t.stats.InErrs++
		t.drop(DropMalformed, netip.AddrPortFrom(dst, 0), netip.AddrPortFrom(src, 0))
		return
	}
	if !s.ChecksumValid(src, dst) {
		t.stats.InCsumErrors++
		t.stats.InErrs++
		t.drop(DropChecksum, netip.AddrPortFrom(dst, s.DstPort()), netip.AddrPortFrom(src, s.SrcPort()))
		return
	}
	opts, err := wire.ParseTCPOptions(s.Options())
	local, remote := netip.AddrPortFrom(dst, s.DstPort()), netip.AddrPortFrom(src, s.SrcPort())
	if err != nil {
		t.stats.InErrs++
		t.drop(DropMalformed, local, remote)
		return
	}
	if s.SrcPort() == 0 || s.DstPort() == 0 || !src.Is4() || src.IsMulticast() || src.IsUnspecified() {
		t.stats.InErrs++
		t.drop(DropMalformed, local, remote)
		return
	}
	t.stats.InSegs++
	seg := segment{Seq(s.Seq()), Seq(s.Ack()), s.Flags(), uint32(s.Window()), opts, s.Payload()}
	c := t.conns[tupleOf(local, remote)]
	if c != nil && c.state == TimeWait && seg.flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == wire.TCPFlagSYN {
		// RFC 6191: a SYN with a newer timestamp, or without timestamps
		// one beyond what the old incarnation received, may open a new
		// incarnation, whose ISN starts past the old sequence space. A
		// refused one goes on to TIME-WAIT, which answers with an ACK.
		if c.timeWaitReopens(&seg) {
			if l := t.lookupListener(local); l != nil {
				isn := c.sndNxt.Add(65535 + 2)
				t.remove(c)
				t.stats.TimeWaitRecycled++
				l.input(&seg, local, remote, isn)
				return
			}
		}
	}
	if c != nil {
		t.visits++
		c.stats.SegsIn++
		if len(seg.payload) > 0 {
			c.stats.DataSegsIn++
			c.lastDataRecv = now
		}
		c.lastRecv, c.keepProbes = now, 0
		c.input(&seg)
		return
	}
	if l := t.lookupListener(local); l != nil {
		l.input(&seg, local, remote, t.isns.ISN(now, local, remote))
		return
	}
	t.resetFor(&seg, local, remote)
}

// resetFor answers a segment that no connection takes (RFC 9293 3.10.7.1,
// "If the state is CLOSED"): a RST, unless it is one.
func (t *Table) resetFor(seg *segment, local, remote netip.AddrPort) {
	t.drop(DropNoSocket, local, remote)
	switch {
	case seg.has(wire.TCPFlagRST):
	case seg.has(wire.TCPFlagACK):
		t.queueRST(local, remote, seg.ack, 0, false)
	default:
		t.queueRST(local, remote, 0, seg.seq.Add(seg.len()), true)
	}
}

// input is a segment for a listener (RFC 9293 3.10.7.2).
func (l *Listener) input(seg *segment, local, remote netip.AddrPort, isn Seq) {
	t := l.t
	switch {
	case seg.has(wire.TCPFlagRST):
		if seg.has(wire.TCPFlagSYN) {
			t.stats.FlagDrops++
			t.drop(DropFlags, local, remote)
		}
		return
	case seg.has(wire.TCPFlagACK):
		if !l.cookieACK(seg, local, remote) {
			t.queueRST(local, remote, seg.ack, 0, false)
		}
		return
	case !seg.has(wire.TCPFlagSYN), seg.has(wire.TCPFlagFIN):
		// Neither a SYN nor anything a listener answers, or SYN+FIN,
		// a scanner's probe no TCP sends: dropped, as Linux's
		// tcp_rcv_state_process does (drop reason TCP_FLAGS).
		t.stats.FlagDrops++
		t.drop(DropFlags, local, remote)
		return
	case l.acceptFull():
		// Linux drops SYNs while the accept queue is full: the client
		// retries, by when the app may have accepted.
		t.stats.ListenOverflows++
		t.stats.ListenDrops++
		t.drop(DropListenOverflow, local, remote)
		return
	case l.synLen >= t.cfg.SynBacklog && !t.cfg.NoSyncookies:
		l.sendCookie(seg, local, remote)
		return
	case l.synLen >= t.cfg.SynBacklog:
		// No cookies: the oldest half-open connection makes room. Under
		// a flood of spoofed SYNs it is one of theirs, which would block
		// the queue until its SYN,ACK retries ran out.
		t.stats.ListenDrops++
		t.remove(l.synHead)
	}
	c := l.newChild(seg, local, remote, isn)
	t.wantOutput(c) // the SYN,ACK
}

// newChild makes the passive connection that seg, a SYN, opens: in
// SYN-RECEIVED, at the tail of the SYN queue.
func (l *Listener) newChild(seg *segment, local, remote netip.AddrPort, isn Seq) *Conn {
	c := l.t.newConn(local, remote, isn, false)
	c.passive = true
	l.synPush(c)
	c.setState(SynReceived)
	c.takeSYN(seg)
	// The SYN is the child's first segment in, as Linux's
	// tcp_create_openreq_child counts it (segs_in = 1): a capture of the
	// connection then has SegsIn + SegsOut frames.
	c.stats.SegsIn++
	l.t.stats.PassiveOpens++
	return c
}

// takeSYN records the peer's SYN: its sequence number, window and
// options (RFC 9293 3.10.7.2–3; RFC 7323 for window scaling, which both
// sides must offer).
func (c *Conn) takeSYN(seg *segment) {
	c.irs = seg.seq
	c.rcvNxt = seg.seq.Add(1)
	c.rcvAdv = c.rcvNxt
	peerMSS := int(seg.opts.MSS)
	if peerMSS == 0 {
		peerMSS = defaultMSS
	}
	c.mss = min(peerMSS, c.t.mssSelf)
	if pmtu := c.t.cfg.PathMTU; pmtu != nil {
		c.mss = min(c.mss, pmtu(c.remote.Addr())-headersLen)
	}
	c.mss = max(c.mss, minMSS)
	c.rcvMSS = min(initRcvMSS, c.mss) // as Linux's tcp_initialize_rcv_mss
	c.sackOffered = seg.opts.SACKPermitted
	c.sack = c.sack && c.sackOffered // RFC 2018 2: both must offer it
	if seg.opts.WindowScale >= 0 {
		c.sndShift, c.wsOffered = uint8(seg.opts.WindowScale), true
	} else {
		c.sndShift, c.rcvShift = 0, 0
	}
	// RFC 7323 2.2: the window of a SYN is never scaled.
	c.sndWnd, c.maxSndWnd = seg.wnd, seg.wnd
	c.sndWl1 = seg.seq
	c.lastAckSent = c.rcvNxt
	c.takeTS(seg)
}

// input runs a segment through the connection (RFC 9293 3.10.7.3–4).
func (c *Conn) input(seg *segment) {
	if c.state == SynSent {
		c.inputSynSent(seg)
	} else {
		c.inputSynchronized(seg)
	}
	if c.ackNow && c.state != Closed {
		c.t.wantOutput(c)
	}
}

// inputSynSent is RFC 9293 3.10.7.3.
func (c *Conn) inputSynSent(seg *segment) {
	t := c.t
	if seg.has(wire.TCPFlagACK) && (seg.ack.LessEq(c.iss) || c.sndMax.LessThan(seg.ack)) {
		if !seg.has(wire.TCPFlagRST) {
			t.queueRST(c.local, c.remote, seg.ack, 0, false)
		}
		return
	}
	if seg.has(wire.TCPFlagRST) {
		if seg.has(wire.TCPFlagACK) {
			c.fail(ErrRefused)
		}
		return
	}
	if !seg.has(wire.TCPFlagSYN) {
		return
	}
	c.takeSYN(seg)
	if !seg.has(wire.TCPFlagACK) {
		// Simultaneous open: answer with SYN,ACK from the same ISS.
		c.setState(SynReceived)
		c.sndNxt = c.iss
		c.ackNow = true
		return
	}
	c.sndWl2 = seg.ack
	c.acked(seg)
	c.establish()
	c.ackNow = true
}

// establish enters ESTABLISHED (or FIN-WAIT-1 when the app closed its
// write side during the handshake).
func (c *Conn) establish() {
	if c.rcv == noRecvBuffer {
		c.allocBuffers()
	}
	c.setState(Established)
	c.startWindow()
	c.initialSpace()
	if c.finQueued {
		c.setState(FinWait1)
	}
	c.t.notify(c)
	c.t.wantOutput(c)
	c.idle()
}

// acceptable is RFC 9293 3.10.7.4's first check, with the window we
// advertised, widened at both edges as Linux's tcp_sequence is: a segment
// without data at the window's right edge (a peer whose window we filled
// sends its ACKs from there, SND.MAX), and a retransmission of data that
// ends at RCV.NXT (its ACK field may be news). Two stacks that both go
// back after a timeout otherwise drop each other's ACKs for good: each
// one's ACKs sit at the other's right edge and its data is all old (the
// two-stack simulation's seed 86). An old SYN or FIN stays unacceptable:
// the unacceptable segment's ACK (or challenge ACK) answers it.
func (c *Conn) acceptable(seg *segment) bool {
	wnd := uint32(max(0, c.rcvAdv.Sub(c.rcvNxt)))
	n := seg.len()
	switch {
	case n == 0:
		return seg.seq.InWindow(c.rcvNxt, wnd+1)
	case seg.flags&(wire.TCPFlagSYN|wire.TCPFlagFIN) == 0 && seg.seq.Add(n) == c.rcvNxt:
		return true
	case wnd == 0:
		return false
	}
	return seg.seq.InWindow(c.rcvNxt, wnd) || seg.seq.Add(n-1).InWindow(c.rcvNxt, wnd)
}

// inputSynchronized is RFC 9293 3.10.7.4, for SYN-RECEIVED and after.
func (c *Conn) inputSynchronized(seg *segment) {
	t := c.t
	if seg.flags&(wire.TCPFlagSYN|wire.TCPFlagACK|wire.TCPFlagRST) == 0 &&
		c.state != TimeWait && (c.state != SynReceived || !c.passive) {
		// Nothing a synchronized TCP sends: dropped unanswered, even out
		// of the window, as Linux's tcp_rcv_established does. (Linux's
		// half-open and time-wait sockets go on to acknowledge it.)
		t.stats.FlagDrops++
		t.drop(DropFlags, c.local, c.remote)
		return
	}
	if c.state == SynReceived && seg.seq == c.irs && seg.flags&(wire.TCPFlagSYN|wire.TCPFlagRST) == wire.TCPFlagSYN {
		if !seg.has(wire.TCPFlagACK) {
			// The peer's SYN again: our SYN,ACK was lost. Send it again
			// now, as Linux does; the bare ACK of the acceptability check
			// would not move a peer in SYN-SENT. Its TSval is the one to
			// echo now (RFC 7323 4.3: it starts at Last.ACK.sent).
			// At most one per InvalidRateLimit (Linux's tcp_check_req):
			// a flood of copies must not draw a flood of SYN,ACKs.
			c.updateTSRecent(seg)
			if !c.oowLimited(&t.stats.ACKSkippedSynRecv) {
				c.sndNxt = c.iss
				t.wantOutput(c)
			}
			return
		}
		if !c.passive && c.sndUna.LessThan(seg.ack) && seg.ack.LessEq(c.sndMax) {
			// Simultaneous open (RFC 9293 3.5 figure 8, line 6): the
			// peer's SYN,ACK acknowledges our SYN and establishes the
			// connection, though its SYN is a duplicate. Its window is
			// not scaled (RFC 7323 2.2). Like Linux, acknowledge it.
			c.sndWnd, c.maxSndWnd = seg.wnd, max(c.maxSndWnd, seg.wnd)
			c.sndWl1, c.sndWl2 = seg.seq, seg.ack
			c.acked(seg)
			c.updateTSRecent(seg)
			c.establish()
			c.ackNow = true
			return
		}
	}
	// First: PAWS (RFC 7323 5.3 R1), then the sequence number (R2). An
	// old duplicate is acknowledged and dropped as an unacceptable
	// segment is, within the rate limit (RFC 5961 7, ratelimit.go); a
	// SYN draws a challenge ACK, as Linux's tcp_validate_incoming does.
	paws := c.pawsReject(seg)
	if paws {
		t.stats.PAWSDrops++
		t.drop(DropPAWS, c.local, c.remote)
	}
	if paws || !c.acceptable(seg) {
		if !paws {
			t.drop(DropSequence, c.local, c.remote)
		}
		switch {
		case seg.has(wire.TCPFlagRST):
		case c.state == TimeWait:
			if seg.has(wire.TCPFlagFIN) && !paws {
				// A retransmitted FIN: our last ACK was lost.
				c.setTimer(t.now+2*t.cfg.MSL, timerTimeWait)
			}
			c.oowACK(seg, &t.stats.ACKSkippedTimeWait)
		case c.state == SynReceived && c.passive:
			c.oowACK(seg, &t.stats.ACKSkippedSynRecv)
		case seg.has(wire.TCPFlagSYN):
			t.stats.SYNChallenges++
			c.challengeACK(seg)
		case paws:
			c.noteOldData(seg)
			c.oowACK(seg, &t.stats.ACKSkippedPAWS)
		default:
			c.noteOldData(seg)
			c.oowACK(seg, &t.stats.ACKSkippedSeq)
		}
		return
	}
	// Second: RST, with RFC 5961 3.2's check against blind resets: only an
	// exact RCV.NXT resets; one elsewhere in the window draws a challenge
	// ACK.
	if seg.has(wire.TCPFlagRST) {
		if c.state == TimeWait {
			// RFC 1337's fix TH1, as FreeBSD: TIME-WAIT ignores resets. A
			// duplicate of our last ACK draws one from a peer that has
			// closed already; ending TIME-WAIT on it ("assassination")
			// would let old duplicates into the 4-tuple's next incarnation.
			return
		}
		if seg.seq != c.rcvNxt {
			c.challengeACK(seg)
			return
		}
		switch {
		case c.state == SynReceived && c.passive:
			t.remove(c) // back to LISTEN: the app never saw it
		case c.state == SynReceived:
			c.fail(ErrRefused)
		case c.state == Established || c.state == CloseWait:
			t.stats.EstabResets++
			c.fail(ErrReset)
		case c.state == FinWait1 || c.state == FinWait2:
			c.fail(ErrReset)
		default: // CLOSING, LAST-ACK
			t.remove(c)
		}
		return
	}
	// Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961
	// 4, RFC 9293); in SYN-RECEIVED of a passive open it sends the
	// connection back to LISTEN.
	if seg.has(wire.TCPFlagSYN) {
		if c.state == SynReceived && c.passive {
			t.remove(c)
			return
		}
		if c.state != TimeWait {
			t.stats.SYNChallenges++
		}
		c.challengeACK(seg)
		return
	}
	// Fifth: the ACK field.
	if !seg.has(wire.TCPFlagACK) {
		return
	}
	if !c.synAcked {
		if !c.sndUna.LessThan(seg.ack) || c.sndMax.LessThan(seg.ack) {
			t.queueRST(c.local, c.remote, seg.ack, 0, false)
			return
		}
		if l := c.listener; l != nil {
			if l.acceptFull() {
				// Linux drops the ACK and keeps the connection half-open:
				// the SYN,ACK retransmission gives the app time to accept.
				t.stats.ListenOverflows++
				t.stats.ListenDrops++
				t.drop(DropListenOverflow, c.local, c.remote)
				return
			}
			l.synUnlink(c)
			l.acceptq = append(l.acceptq, c)
			t.notifyListener(l)
			c.queued = true
		}
		c.sndWnd = seg.wnd << c.sndShift
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWl1, c.sndWl2 = seg.seq, seg.ack
		c.establish()
	}
	if !c.inputACK(seg) {
		return
	}
	c.updateTSRecent(seg) // RFC 7323 4.3, R3 of 5.3

	// Seventh: the data.
	kept := true // all of the payload stored (or old)
	if len(seg.payload) > 0 {
		switch c.state {
		case Established, FinWait1, FinWait2:
			if c.appClosed && c.rcvNxt.LessThan(seg.seq.Add(uint32(len(seg.payload)))) {
				// RFC 1122 4.2.2.13: new data for an app that closed is
				// lost, and the peer must know. (A retransmission of what
				// came before is only acknowledged.)
				t.queueRST(c.local, c.remote, c.sndMax, c.rcvNxt.Add(uint32(len(seg.payload))), true)
				c.err = ErrAborted
				t.remove(c)
				return
			}
			kept = c.inputData(seg)
		}
	}
	// Eighth: the FIN, once every byte before it arrived. One ahead of a
	// hole, whose data was all kept, waits for the hole to fill, as Linux
	// keeps it (RFC 9293 3.10.7.4 lets such segments wait).
	if seg.has(wire.TCPFlagFIN) {
		end := seg.seq.Add(uint32(len(seg.payload)))
		switch {
		case end == c.rcvNxt:
			c.inputFIN()
		case kept && !c.finReceived && c.rcvNxt.LessThan(end) && end.LessThan(c.rcvAdv):
			switch c.state {
			case Established, FinWait1, FinWait2:
				c.finAhead, c.finAt = true, end
			}
		}
	}
}

// inputACK is the fifth step for the synchronized states: it reports
// whether processing goes on.
func (c *Conn) inputACK(seg *segment) bool {
	t := c.t
	switch {
	case c.sndMax.LessThan(seg.ack):
		// Acknowledges something not yet sent (RFC 5961 5.2).
		c.challengeACK(seg)
		return false
	case seg.ack.LessThan(c.sndUna.Add(-c.maxSndWnd)):
		// RFC 5961 5.2: far too old, a blind injection.
		c.challengeACK(seg)
		return false
	}
	c.lastAckRecv = t.now
	c.lossProbeACK(seg)
	una, sacked := c.sndUna, c.recs.sacked
	advanced := c.sndUna.LessThan(seg.ack)
	if advanced {
		c.acked(seg)
	} else if seg.ack == c.sndUna && len(seg.payload) == 0 && !seg.has(wire.TCPFlagFIN) &&
		seg.wnd<<c.sndShift == c.sndWnd && c.sndUna != c.sndMax && c.sndWnd != 0 {
		// A duplicate ACK (RFC 5681 2): the third asks for the missing
		// segment at once rather than after the timeout. Not with a
		// zero window: those ACKs answer our probes, and nothing may be
		// sent into it.
		c.dupAck()
	}
	c.takeSACK(seg)
	c.rateAcked()
	if c.sackRecovery() && c.state != Closed {
		// RFC 6937's DeliveredData: the change in SND.UNA and in the
		// SACKed bytes (negative on reneging).
		c.sackACK(uint32(max(0, int64(c.sndUna.Sub(una))+int64(c.recs.sacked)-int64(sacked))))
	}
	if seg.ack == c.sndUna && c.sndWnd == 0 {
		// The peer answers our zero-window probes: it is alive, however
		// long its window stays shut (RFC 1122 4.2.2.17).
		c.retries = 0
	}
	// RFC 9293 3.10.7.4: update the window unless the segment is older
	// than the one that set it.
	if c.sndWl1.LessThan(seg.seq) || (c.sndWl1 == seg.seq && c.sndWl2.LessEq(seg.ack)) {
		wnd := seg.wnd << c.sndShift
		if wnd > c.sndWnd {
			t.wantOutput(c)
		}
		if c.sndWnd == 0 && wnd > 0 && c.sndUna.LessThan(c.sndNxt) {
			// The window reopens and our zero-window probe is still
			// unacknowledged: the receiver dropped it (RFC 9293 3.8.6.1).
			// Send it again first, rather than data past it that leaves
			// a hole for the retransmission timeout to fill.
			c.sndNxt = c.sndUna
			c.rttTiming = false
		}
		c.sndWnd, c.sndWl1, c.sndWl2 = wnd, seg.seq, seg.ack
		c.maxSndWnd = max(c.maxSndWnd, wnd)
	}
	if c.state == Closed {
		return false
	}
	c.probeOnACK(advanced)
	return true
}

// acked takes seg's acknowledgment of new data (SND.UNA < SEG.ACK <=
// SND.MAX).
func (c *Conn) acked(seg *segment) {
	t := c.t
	ack := seg.ack
	n := uint32(ack.Sub(c.sndUna))
	if !c.synAcked { // the SYN
		n--
		c.synAcked = true
	}
	data := min(int(n), c.snd.Len())
	full := c.snd.Free() < int(c.smss()) // the app waits for room
	c.snd.Discard(data)
	c.stats.BytesAcked += uint64(data)
	finAcked := c.finQueued && int(n) > data
	c.sndUna = ack
	c.softErr = nil // the path works again (Linux clears sk_err_soft here too)
	c.progressAt = t.now
	if c.sndNxt.LessThan(ack) {
		c.sndNxt = ack
	}
	// An RTT sample (RFC 6298) on every ACK of new data. From the timed
	// segment if the ACK covers it and it was not retransmitted (Karn):
	// that one is timed to the nanosecond, as Linux prefers its own
	// timing to the echo. Else from the timestamp echo (RFC 7323 4.1),
	// which a retransmission does not make ambiguous. Either ends the
	// backoff (RFC 6298 5.7 lets it). Every ACK's sample goes through
	// RFC 6298's gains unscaled, as Linux's do (RFC 7323 4.2 suggests
	// smaller gains with many samples per round trip; the RTO's floor
	// keeps the sooner-settling RTTVAR harmless). The window takes the
	// ACK after the sample, which HyStart++ reads, as Linux's
	// tcp_cong_avoid comes after tcp_ack_update_rtt.
	var rtt time.Duration
	sampled := false
	if c.rttTiming && !ack.LessThan(c.rttSeq) {
		rtt, sampled = t.now-c.rttStart, true
		c.rttTiming = false
	} else {
		rtt, sampled = c.tsRTT(seg)
	}
	if sampled {
		c.rttSample(rtt)
	}
	c.ackedWindow(seg, n, rtt, sampled)
	if full && data > 0 {
		c.sndbufExpand()
	}
	c.retries, c.dupAcks = 0, 0
	if c.sackRecovery() {
		c.recordsAcked(seg)
	}
	if c.sndUna == c.sndMax {
		c.stopRTO()
		c.idleAt = t.now
		c.idle()
	} else {
		c.setRTO(t.now + c.rto.RTO()) // RFC 6298 5.3
	}
	if data > 0 {
		t.notify(c)
		t.wantOutput(c)
	}
	if !finAcked {
		return
	}
	switch c.state {
	case FinWait1:
		c.setState(FinWait2)
		if c.appClosed {
			c.orphanInFinWait2()
		}
		// News for an app that waits for its data and FIN to be
		// acknowledged (a lingering close).
		t.notify(c)
	case Closing:
		c.enterTimeWait()
	case LastAck:
		t.remove(c)
	}
}

// rttSample takes a round-trip time measurement: the RTO's estimator and
// the minimum RTT's filter.
func (c *Conn) rttSample(rtt time.Duration) {
	c.rto.Sample(rtt)
	c.minRTT.update(c.t.now, max(rtt, 0))
}

// inputData stores the payload of an acceptable segment, trimmed to the
// window (RFC 9293 3.10.7.4, seventh), and acknowledges it.
func (c *Conn) inputData(seg *segment) (kept bool) {
	p := seg.payload
	off := seg.seq.Sub(c.rcvNxt)
	if off < 0 { // the front was received already
		// RFC 2883 4: the next ACK reports the duplicate part.
		c.noteDuplicate(seg.seq, min(seg.seq.Add(uint32(len(p))), c.rcvNxt))
		if int(-off) >= len(p) {
			c.ackNow = true
			return true
		}
		p, off = p[-off:], 0
	}
	room := max(0, int(c.rcvAdv.Sub(c.rcvNxt))-int(off))
	if free := c.rcv.Free() - int(off); free < min(len(p), room) {
		// The window let it in, the buffer has no room: a window offered
		// before SetRecvBuffer shrank the buffer. What does not fit is
		// dropped unacknowledged, as Linux drops what its receive
		// memory cannot take (TCPRcvQDrop).
		room = max(0, free)
		c.t.stats.RcvQDrops++
		c.t.drop(DropRecvQueueFull, c.local, c.remote)
	}
	kept = len(p) <= room
	p = p[:min(len(p), room)]
	at := c.rcv.end() + uint64(off)
	if off > 0 && len(p) > 0 && c.rcv.ooo.covers(span{at, at + uint64(len(p))}) {
		c.noteDuplicate(seg.seq, seg.seq.Add(uint32(len(p))))
	}
	holes := c.rcv.ooo.n > 0
	n, ok := c.rcv.Insert(int(off), p)
	kept = kept && ok
	if !ok {
		c.t.stats.OfoDrops++
		c.t.drop(DropOutOfOrder, c.local, c.remote)
		c.stats.OutOfOrderDrops++
	} else if off > 0 && len(p) > 0 && c.sack {
		c.noteOutOfOrder(at)
	}
	c.rcvNxt = c.rcvNxt.Add(uint32(n))
	c.stats.BytesReceived += uint64(n)
	if n > 0 && off == 0 {
		c.rcvRTTMeasure(seg, len(p))
		c.rcvSpaceAdjust()
	}
	if c.finAhead && c.rcvNxt == c.finAt {
		c.finAhead = false
		defer c.inputFIN() // after the data's bookkeeping
	}
	// Every data segment is acknowledged, at once or delayed (delack.go).
	// Out-of-order ones at once as RFC 5681 4.2 asks, each by its own
	// duplicate ACK: the sender's fast retransmit counts three, and one
	// ACK for a whole batch of them would leave it waiting for its
	// timeout. Data that did not all fit, at once too: the peer learns
	// the window it overran.
	switch {
	case off > 0:
		c.ackNow = true
		c.dupAcksDue++
	case !kept || n == 0:
		c.ackNow = true
	default:
		c.ackInOrder(len(seg.payload), holes)
	}
	if n > 0 {
		c.t.notify(c)
	}
	return kept
}

// inputFIN is the eighth step.
func (c *Conn) inputFIN() {
	c.rcvNxt = c.rcvNxt.Add(1)
	c.finReceived = true
	c.ackNow = true
	c.t.notify(c)
	switch c.state {
	case SynReceived, Established:
		c.setState(CloseWait)
	case FinWait1:
		// Our FIN is not acknowledged yet (that would have made it
		// FIN-WAIT-2 in the fifth step): simultaneous close.
		c.setState(Closing)
	case FinWait2:
		c.enterTimeWait()
	case TimeWait:
		c.setTimer(c.t.now+2*c.t.cfg.MSL, timerTimeWait)
	}
}

// enterTimeWait waits 2×MSL before the 4-tuple may serve again (RFC 9293
// 3.6). The buffers go now if the app closed; otherwise it may still read
// what came before the FIN.
func (c *Conn) enterTimeWait() {
	c.setState(TimeWait)
	c.freeBuffers()
	c.setTimer(c.t.now+2*c.t.cfg.MSL, timerTimeWait)
	c.t.notify(c)
}

// fail ends the connection with err.
func (c *Conn) fail(err error) {
	c.err = err
	c.t.remove(c)
}
