package tcp

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Output runs the timers due at now, then writes the next segment into b
// (the TCP header, any payload, and the checksum) and describes it, at
// wire.LayerTransport; false when nothing is due. The poller calls it
// until it reports nothing, with b the room after the IPv4 header of a
// transmit frame. A segment never exceeds len(b).
func (t *Table) Output(now time.Duration, b []byte) (wire.Out, bool) {
	t.runTimers(now)
	if len(b) < wire.TCPMaxHeaderLen+1 {
		return wire.Out{}, false
	}
	if t.nreplies > 0 {
		r := &t.replies[t.replyHead]
		t.replyHead = (t.replyHead + 1) % maxPendingReplies
		t.nreplies--
		f := wire.TCPFields{SrcPort: r.local.Port(), DstPort: r.remote.Port(), Seq: uint32(r.seq), Ack: uint32(r.ack),
			Flags: r.flags, Window: r.wnd, Options: r.opts}
		t.stats.OutSegs++
		if r.flags&wire.TCPFlagRST != 0 {
			t.stats.OutRsts++
		}
		return outSegment(r.local, r.remote, f.Encode(b, 0, r.local.Addr(), r.remote.Addr())), true
	}
	for t.txHead < len(t.txq) {
		c := t.txq[t.txHead]
		t.visits++
		if n := c.output(b); n > 0 {
			// Round robin: c goes to the back, so a bulk sender does not
			// starve the others.
			t.txq[t.txHead] = nil
			t.txHead++
			if t.txHead >= len(t.txq)/2 {
				// Slide the queue down rather than let append grow it
				// while it never drains (a sender that always has more).
				n := copy(t.txq, t.txq[t.txHead:])
				clear(t.txq[n:])
				t.txq, t.txHead = t.txq[:n], 0
			}
			t.txq = append(t.txq, c)
			t.stats.OutSegs++
			c.stats.SegsOut++
			return outSegment(c.local, c.remote, n), true
		}
		c.inTx = false
		t.txq[t.txHead] = nil
		t.txHead++
	}
	t.txq, t.txHead = t.txq[:0], 0
	return wire.Out{}, false
}

// outSegment describes a segment of n bytes from local to remote.
func outSegment(local, remote netip.AddrPort, n int) wire.Out {
	return wire.Out{Len: n, Dst: remote.Addr(), Proto: wire.ProtoTCP, Src: local.Addr().As4()}
}

// output writes c's next segment into b, or returns 0.
func (c *Conn) output(b []byte) int {
	switch c.state {
	case Closed, TimeWait:
		if c.state == TimeWait && c.ackNow {
			return c.emit(b, c.ackSeq(), 0, wire.TCPFlagACK)
		}
		return 0
	case SynSent, SynReceived:
		if c.sndNxt == c.iss {
			return c.emitSYN(b)
		}
		if c.state == SynSent {
			return 0
		}
	}
	if c.state == SynReceived || !c.synAcked {
		if c.ackNow {
			return c.emit(b, c.ackSeq(), 0, wire.TCPFlagACK)
		}
		return 0
	}
	if c.keepProbe {
		// A keepalive probe: one byte before what the peer expects, so it
		// must answer with an ACK (RFC 1122 4.2.3.6; Linux sends no data).
		c.keepProbe = false
		return c.emit(b, c.sndUna.Add(^uint32(0)), 0, wire.TCPFlagACK)
	}
	if c.dupAcksDue > 0 {
		// RFC 5681 4.2: one duplicate ACK per out-of-order segment, with
		// no data (the sender counts only pure ACKs as duplicates, RFC
		// 5681 2).
		c.dupAcksDue--
		return c.emit(b, c.ackSeq(), 0, wire.TCPFlagACK)
	}
	// The MSS the peer announced counts no options: ours come out of
	// the payload (RFC 9293 3.7.1, RFC 6691), SACK blocks included.
	maxPayload := min(c.mss, len(b)-wire.TCPMinLen) - c.optLen() - c.sackOptLen()
	if c.fastRetransmit {
		c.fastRetransmit = false
		n := min(maxPayload, c.snd.Len())
		if hole := c.sackHole(c.sndUna); hole >= 0 {
			n = min(n, hole) // up to what the peer holds (RFC 6675 NextSeg)
		}
		flags := uint8(wire.TCPFlagACK)
		if n == c.snd.Len() && c.finQueued && c.sndMax == c.finSeq().Add(1) {
			flags |= wire.TCPFlagFIN
		}
		if n > 0 || flags&wire.TCPFlagFIN != 0 {
			// emit counts the retransmission.
			c.rttTiming = false
			c.stats.FastRetransmits++
			c.rexmitCause = CauseFast
			return c.emit(b, c.sndUna, n, flags)
		}
	}
	if c.tlp.due {
		if n := c.sendProbe(b, maxPayload); n > 0 {
			return n
		}
	}
	if c.sackRecovery() {
		if n := c.retransmitLost(b, maxPayload); n > 0 {
			return n
		}
	}
	off := int(c.sndNxt.Sub(c.sndUna))
	unsent := c.snd.Len() - off
	room := int(int64(c.sndUna.Add(c.sndWnd).Sub(c.sndNxt)))
	n := max(0, min(unsent, room, maxPayload))
	// A probe: the persist timer fired, or a retransmission timeout
	// went back into a window that has closed since.
	persist := c.probe
	probe := persist || (room <= 0 && c.sndNxt.LessThan(c.sndMax))
	c.probe = false
	if probe && n == 0 && unsent > 0 {
		// The persist timer fired on a zero window: one byte past it
		// (RFC 9293 3.8.6.1). The peer ACKs it if its window opened.
		n = 1
	}
	if n > 0 && n < maxPayload && !probe && (!c.sendSmall(n, unsent) || c.corked()) {
		n = 0
	}
	if n > 0 && c.sndUna == c.sndMax {
		c.restartWindow()
		if !probe {
			c.progressAt = c.t.now // a flight starts: the user timeout counts from here
		}
	}
	if left := c.sendRoom(); n > left {
		// At most cwnd in flight (RFC 5681 3.1), in full segments but
		// for the tail, as Linux counts its window in segments. Not
		// with the peer's window instead, above: that would take a
		// full congestion window for a closed peer window and probe it.
		n = max(0, left)
		if n < maxPayload && n < unsent {
			n = 0
		}
	}
	// In FIN-WAIT-2 our FIN is acknowledged (RFC 9293 3.10.7.4) and
	// finSeq, one past the data, is one past it: nothing more to send.
	fin := c.finQueued && c.state != FinWait2 && n == unsent && c.sndNxt.Add(uint32(n)) == c.finSeq()
	if n > 0 && !probe && c.pace.on && c.paceHeld() {
		n, fin = 0, false // until the pacer's release (pacing.go)
	}
	if n == 0 && !fin {
		if c.paceTm.Active() {
			// Held by the pacer, not by the app, the peer or cwnd: the
			// release brings it back.
			if c.ackNow {
				return c.emit(b, c.ackSeq(), 0, wire.TCPFlagACK)
			}
			return 0
		}
		c.checkAppLimited(unsent)
		if unsent > 0 && c.sndUna == c.sndMax && c.timerKind == timerNone {
			// Nothing in flight and nothing we may send: the persist
			// timer keeps asking, so a lost window update cannot
			// deadlock the connection.
			c.setTimer(c.t.now+c.timeout(), timerPersist)
		}
		if c.ackNow {
			return c.emit(b, c.ackSeq(), 0, wire.TCPFlagACK)
		}
		return 0
	}
	flags := uint8(wire.TCPFlagACK)
	if fin {
		flags |= wire.TCPFlagFIN
	}
	if n > 0 {
		c.markPush(&flags, n, unsent, n == room && n < maxPayload)
	}
	if persist {
		// A probe backs off like a retransmission (RFC 1122 4.2.2.17).
		// One the retransmission timer resends was backed off there.
		c.rto.Backoff()
	}
	return c.emit(b, c.sndNxt, n, flags)
}

// retransmitLost resends the first segment RACK marked lost (RFC 6675
// NextSeg rule 1) if pipe leaves room in cwnd: one segment, as Linux
// sends while in flight is below cwnd, cut to the MSS and to where the
// peer's SACKed data begins; it returns its length, or 0.
func (c *Conn) retransmitLost(b []byte, maxPayload int) int {
	i := c.nextLost()
	if i < 0 || c.sendRoom() <= 0 || (c.pace.on && c.paceHeld()) {
		return 0
	}
	s := c.recs.at(i)
	seq := c.sndSeq(s.start)
	n := int(s.len())
	fin := c.finQueued && s.end > c.sndOff(c.finSeq()) // the FIN counts one past the data
	if fin {
		n--
	}
	if n > maxPayload {
		n, fin = maxPayload, false
	}
	if hole := c.sackHole(seq); hole >= 0 && n > hole {
		n, fin = hole, false
	}
	if n <= 0 && !fin {
		// Nothing left of it to send (the peer SACKed it, in pieces the
		// records could not be cut into): count it resent.
		c.recs.setFlags(s, s.flags|segRetrans)
		return 0
	}
	flags := uint8(wire.TCPFlagACK)
	if fin {
		flags |= wire.TCPFlagFIN
	}
	if c.inRecovery || !c.sndUna.LessThan(c.recover) {
		c.stats.FastRetransmits++
		c.rexmitCause = CauseRACK
	} else {
		c.stats.RTORetransmits++ // after a timeout (recover, timeoutWindow)
		c.rexmitCause = CauseRTO
	}
	return c.emit(b, seq, n, flags)
}

// markPush sets PSH on a segment of n new bytes by Linux's rules:
//
//   - it empties the send queue, the end of what the app wrote: tcp.c's
//     tcp_push marks the last segment of every write; the send ring keeps
//     no write boundaries, so all that is written stands for it;
//   - it is cut short by the peer's window, less than a full segment with
//     data behind it (cut): tcp_output.c's tcp_write_wakeup marks the part
//     it sends of a segment that does not fit the window, as when the
//     persist timer probes a window too small to send into otherwise;
//   - the data sent since the last PSH passes half the largest window the
//     peer offered: tcp.c's forced_push. A sender cut to a small window
//     (10 bytes, say) then pushes every segment, so a receiver that waits
//     for PSH does not wait for data that cannot come until it reads.
//
// A segment cut to cwnd is a full one here (output sends the tail only
// whole) and carries no PSH, as in Linux, whose tso_fragment leaves PSH
// on the part that waits. Fast retransmit sends without PSH (Linux
// resends a segment's own flags).
func (c *Conn) markPush(flags *uint8, n, unsent int, cut bool) {
	c.unpushed += uint32(n)
	if n == unsent || cut || c.unpushed > c.maxSndWnd/2 {
		*flags |= wire.TCPFlagPSH
		c.unpushed = 0
	}
}

// ackSeq is the sequence number of a segment with no data: SND.MAX, not
// SND.NXT, which a retransmission timeout moves back. The peer may have
// received everything up to SND.MAX already, and would find a pure ACK
// from further back unacceptable (RFC 9293 3.10.7.4) and drop it unread:
// were both sides going back after timeouts at once, with everything
// their retransmissions carry old to the other, neither would hear the
// other's ACKs again. Like Linux's tcp_acceptable_seq, it stays within
// the window the peer offered, should that have shrunk below SND.MAX.
func (c *Conn) ackSeq() Seq {
	if end := c.sndUna.Add(c.sndWnd); end.LessThan(c.sndMax) && c.synAcked {
		if end.LessThan(c.sndNxt) {
			return c.sndNxt
		}
		return end
	}
	return c.sndMax
}

// sendSmall is the sender's silly window avoidance (RFC 9293 3.8.6.2.1)
// with Nagle (3.7.4) for a segment of n < MSS bytes: it goes if it is all
// there is and nothing is in flight (or Nagle is off), or if it fills
// half the largest window the peer offered.
func (c *Conn) sendSmall(n, unsent int) bool {
	if n == unsent && (!c.nagle || c.sndNxt == c.sndUna) {
		return true
	}
	return uint32(n) >= c.maxSndWnd/2
}

// finSeq is the sequence number of our FIN: right after the data.
func (c *Conn) finSeq() Seq { return c.sndUna.Add(uint32(c.snd.Len())) }

// emitSYN writes our SYN (SYN-SENT) or SYN,ACK (SYN-RECEIVED), with the
// MSS we take (the MTU less 40: RFC 6691, options not counted), our window
// scale and timestamps (RFC 7323 2.2 and 3.2: offered in a SYN, and in a
// SYN,ACK only if the peer offered them).
func (c *Conn) emitSYN(b []byte) int {
	flags := uint8(wire.TCPFlagSYN)
	if c.state == SynReceived {
		flags |= wire.TCPFlagACK
	}
	opts := c.options(flags)
	opts.MSS = uint16(min(c.t.mssSelf, 0xffff))
	if c.state == SynSent || c.wsOffered {
		opts.WindowScale = int8(c.rcvShift)
	}
	return c.emitWith(b, c.iss, 0, flags, opts)
}

// emit writes a segment of n payload bytes from the send buffer at
// sequence number seq, with the options of every segment (timestamps).
func (c *Conn) emit(b []byte, seq Seq, n int, flags uint8) int {
	return c.emitWith(b, seq, n, flags, c.options(flags))
}

func (c *Conn) emitWith(b []byte, seq Seq, n int, flags uint8, opts wire.TCPOptions) int {
	t := c.t
	f := wire.TCPFields{
		SrcPort: c.local.Port(), DstPort: c.remote.Port(),
		Seq: uint32(seq), Flags: flags, Options: opts,
	}
	wnd := c.windowToAdvertise()
	if flags&wire.TCPFlagSYN != 0 {
		wnd = min(wnd, 0xffff) // RFC 7323 2.2: never scaled in a SYN
		f.Window = uint16(wnd)
	} else {
		f.Window = uint16(wnd >> c.rcvShift)
	}
	if flags&wire.TCPFlagACK != 0 {
		f.Ack = uint32(c.rcvNxt)
		c.ackSent()
		c.lastAckSent = c.rcvNxt // RFC 7323 4.3's Last.ACK.sent
		c.rcvAdv = c.rcvNxt.Add(wnd)
	}
	hl := f.HeaderLen()
	var sum uint32
	if n > 0 {
		// The payload is checksummed while it is copied into the frame.
		_, sum = c.snd.PeekSum(int(seq.Sub(c.sndUna)), b[hl:hl+n])
	}
	f.EncodeSum(b, n, sum, c.local.Addr(), c.remote.Addr())
	// Sequence space used: SYN and FIN count one each.
	end := seq.Add(uint32(n))
	if flags&wire.TCPFlagSYN != 0 {
		end = end.Add(1)
	}
	if flags&wire.TCPFlagFIN != 0 {
		end = end.Add(1)
	}
	if end != seq {
		retransmit := seq.LessThan(c.sndMax)
		if n > 0 {
			c.sentData(seq, n, retransmit)
		}
		if c.sackRecovery() {
			c.noteSent(seq, end)
		}
		if retransmit {
			t.stats.RetransSegs++
			c.stats.Retransmits++
			if t.cfg.Trace != nil {
				c.traceRetransmit(seq, n, flags)
			}
			if c.undo.armed {
				c.undo.retrans++ // for the D-SACKs that may show it needless
			}
			if seq == c.sndNxt {
				// From SND.NXT below SND.MAX: a timeout (or a dropped
				// zero-window probe) moved SND.NXT back. A fast
				// retransmission goes from SND.UNA, out of turn.
				c.stats.RTORetransmits++
			}
			if c.rttTiming && seq.LessThan(c.rttSeq) {
				c.rttTiming = false // Karn's rule
			}
		} else if !c.rttTiming {
			c.rttTiming, c.rttSeq, c.rttStart = true, end, t.now
		}
		if c.sndNxt.LessThan(end) {
			c.sndNxt = end
		}
		if c.sndMax.LessThan(end) {
			c.sndMax = end
		}
		c.noteFlight()
		// RFC 6298 5.1: the timer runs while anything is in flight.
		if !c.retransmitTimerRunning() {
			c.setTimer(t.now+c.timeout(), timerRetransmit)
		}
		if !retransmit {
			c.sentNewData()
		}
	}
	return hl + n
}

// sentData counts a data segment of n bytes from seq going out, and
// takes its delivery rate snapshot (rate.go).
func (c *Conn) sentData(seq Seq, n int, retransmit bool) {
	c.stats.DataSegsOut++
	c.stats.BytesSent += uint64(n)
	c.lastDataSent = c.t.now
	c.paceSent(n)
	start := c.sndOff(seq)
	end := start + uint64(n)
	if retransmit {
		c.stats.BytesRetrans += uint64(n)
	}
	c.rateSent(start, end, c.sndUna == c.sndMax, retransmit)
}

// windowToAdvertise is the receive window to offer, as Linux's
// __tcp_select_window and tcp_select_window choose it:
//
//   - Receiver silly window avoidance (RFC 9293 3.8.6.2.2): the right
//     edge stays where it is until the room free beyond it reaches
//     swsStep, min(buffer/2, the peer's segment size); then the window
//     opens to all the free room. So a full buffer offers 0 until that
//     much is read, and then at least that much.
//   - The right edge never moves left (3.8.6): the window offered last,
//     less what came since, is the least offered.
//   - With window scaling the field counts units of 2^shift. A window
//     that opens is rounded down to a unit (Linux's round_down: never
//     room the buffer lacks). One that is kept is rounded up, as Linux's
//     ALIGN(cur_win) does, so the edge the peer sees does not move left
//     by the rounding; but only if the buffer holds the bytes rounding
//     adds, since ours is exact memory where Linux's is an accounting
//     limit it may pass. Otherwise the field rounds it down, the
//     fraction of a unit of shrinking RFC 7323 2.4 lets a receiver
//     offer, while rcvAdv keeps the edge we accept up to where it was.
//
// Linux also closes a window below 1/16 of the buffer, to stay inside
// its memory accounting; ours needs no such margin.
func (c *Conn) windowToAdvertise() uint32 {
	unit := uint32(1) << c.rcvShift
	cur := uint32(max(0, c.rcvAdv.Sub(c.rcvNxt)))
	free := uint32(c.rcv.Free())
	if c.state == SynReceived && c.rcv == noRecvBuffer {
		free = uint32(c.t.rcvCap) // allocated when established
	}
	if up := (cur + unit - 1) &^ (unit - 1); up <= free {
		cur = up
	}
	if free <= cur || free-cur < c.swsStep() {
		return cur
	}
	return max(cur, min(free, 0xffff<<c.rcvShift)&^(unit-1))
}

// swsStep is how far the window opens at least (RFC 9293 3.8.6.2.2):
// min(Fr × RCV.BUFF, Eff.snd.MSS) with Fr = 1/2, the segment size the
// peer's segments show (Linux's rcv_mss).
func (c *Conn) swsStep() uint32 { return uint32(min(c.rcv.Cap()/2, c.rcvMSS)) }
