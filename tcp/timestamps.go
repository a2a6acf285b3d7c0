package tcp

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Timestamps (RFC 7323 3–5). Offered in our SYN unless Config.NoTimestamps
// says otherwise, and used only when both SYNs carried the option (3.2);
// then every segment but a RST carries it. They serve three ends:
//
//   - RTT measurement (4.1): the peer echoes our TSval, so every ACK that
//     advances SND.UNA times a round trip, retransmitted segments
//     included (no Karn ambiguity: the echo says which copy arrived).
//   - PAWS (5): a segment whose TSval is older than TS.Recent is an old
//     duplicate from a wrapped sequence space or an earlier incarnation.
//   - TIME-WAIT reuse (RFC 6191): a SYN with a newer TSval may reopen a
//     4-tuple in TIME-WAIT here, and a Linux client reuses its own
//     TIME-WAIT ports towards us (tcp_tw_reuse) only if the old
//     connection had timestamps.

const (
	// tsOptLen is the room the option takes in every segment: NOP, NOP,
	// kind, length, TSval, TSecr (RFC 7323 appendix A's layout).
	tsOptLen = 12
	// tsTick is our timestamp clock's period: 1 ms, the fastest RFC 7323
	// 5.4 suggests and what Linux uses. It wraps in 49.7 days.
	tsTick = time.Millisecond
	// pawsIdle is RFC 7323 5.5's bound: after 24 days without a new
	// TS.Recent the peer's clock may have wrapped by half, so TS.Recent
	// is no longer valid for PAWS.
	pawsIdle = 24 * 24 * time.Hour
)

// tsVal is our timestamp clock now: the connection's offset (ISNs.TSOffset)
// plus milliseconds of the table's time.
func (c *Conn) tsVal() uint32 { return c.tsOff + uint32(c.t.now/tsTick) }

// optLen is the length of the options every non-SYN segment carries, which
// come out of the MSS (RFC 9293 3.7.1, RFC 6691: the MSS the peer announced
// counts no TCP options, so the payload shrinks by ours).
func (c *Conn) optLen() int {
	if c.ts {
		return tsOptLen
	}
	return 0
}

// smss is RFC 5681's sender maximum segment size: the payload of a full
// segment, our options left out.
func (c *Conn) smss() uint32 { return uint32(c.mss - c.optLen()) }

// options are the options of a segment with flags: the timestamps once
// negotiated (or offered, in our SYN), SACK-permitted in a SYN, and SACK
// blocks in an ACK (sack.go). TSecr echoes TS.Recent, and is zero without
// the ACK bit (RFC 7323 3.2).
func (c *Conn) options(flags uint8) wire.TCPOptions {
	o := wire.TCPOptions{WindowScale: -1}
	if c.ts {
		o.HasTimestamps, o.TSVal = true, c.tsVal()
		if flags&wire.TCPFlagACK != 0 {
			o.TSEcr = c.tsRecent
		}
	}
	switch {
	case flags&wire.TCPFlagSYN != 0:
		o.SACKPermitted = c.sack
	case flags&wire.TCPFlagACK != 0:
		c.addSACKBlocks(&o)
	}
	return o
}

// tsBefore reports whether timestamp a is older than b, modulo 2^32
// (RFC 7323 5.2).
func tsBefore(a, b uint32) bool { return int32(a-b) < 0 }

// tsRecentValid reports whether TS.Recent may judge segments: it is
// younger than 24 days (RFC 7323 5.5). This is exact, not simplified: the
// table's clock says when TS.Recent was taken.
func (c *Conn) tsRecentValid() bool { return c.t.now-c.tsRecentAt < pawsIdle }

// pawsReject is RFC 7323 5.3 R1: with timestamps in use, a segment with
// the option whose TSval is older than a valid TS.Recent is an old
// duplicate, unless it is a RST (which is judged by its sequence number
// alone, RFC 5961). Linux's tcp_disordered_ack exception (a pure
// duplicate ACK reordered behind newer ones) is not made: such an ACK
// carries no news we need.
func (c *Conn) pawsReject(seg *segment) bool {
	return c.ts && seg.opts.HasTimestamps && !seg.has(wire.TCPFlagRST) &&
		tsBefore(seg.opts.TSVal, c.tsRecent) && c.tsRecentValid()
}

// takeTS records the timestamps of the peer's SYN: they are used if both
// SYNs carried them (RFC 7323 3.2), and its TSval is the first TS.Recent.
func (c *Conn) takeTS(seg *segment) {
	c.ts = c.ts && seg.opts.HasTimestamps
	if c.ts {
		c.tsRecent, c.tsRecentAt = seg.opts.TSVal, c.t.now
	}
}

// updateTSRecent is RFC 7323 4.3 (2): the TSval of an acceptable segment
// becomes TS.Recent if it is not older and the segment starts at or before
// Last.ACK.sent, the acknowledgment we sent last. So while ACKs are
// delayed (here: for a batch), the echo carries the TSval of the earliest
// segment the ACK covers, and a segment after a hole (whose ACK only
// repeats Last.ACK.sent) does not move it. It runs once the ACK field is
// found acceptable too, as Linux does, so that a forged segment with an
// in-window sequence number but a wrong ACK cannot push TS.Recent ahead
// and make PAWS drop the real ones. Past 24 days (RFC 7323 5.5) any TSval
// replaces it.
func (c *Conn) updateTSRecent(seg *segment) {
	if !c.ts || !seg.opts.HasTimestamps || c.lastAckSent.LessThan(seg.seq) {
		return
	}
	if tsBefore(seg.opts.TSVal, c.tsRecent) && c.tsRecentValid() {
		return
	}
	c.tsRecent, c.tsRecentAt = seg.opts.TSVal, c.t.now
}

// tsRTT is the round trip that the echo of an ACK times (RFC 7323 4.1):
// from the millisecond our echoed TSval was sent until now. The echo
// gives the send time to the millisecond, so the sample may exceed the
// round trip by up to 1 ms, never fall short of it. A zero echo is not
// used (Linux sends none but zero TSecr on a SYN; a peer that echoes 0
// may not have it), nor one from the future or beyond the largest RTO: a
// peer's bad echo cannot blow the estimate up.
func (c *Conn) tsRTT(seg *segment) (time.Duration, bool) {
	if !c.ts || !seg.opts.HasTimestamps || seg.opts.TSEcr == 0 {
		return 0, false
	}
	ticks := uint32(c.t.now/tsTick) - (seg.opts.TSEcr - c.tsOff)
	if int32(ticks) < 0 {
		return 0, false
	}
	rtt := time.Duration(ticks)*tsTick + c.t.now%tsTick
	if rtt > c.rto.max {
		return 0, false
	}
	return rtt, true
}

// timeWaitReopens is RFC 6191's rule for a SYN that finds its 4-tuple in
// TIME-WAIT, as Linux applies it (tcp_timewait_state_process): when both
// the old incarnation and the SYN have timestamps, a TSval older than
// TS.Recent refuses it (PAWS) and a newer one accepts it whatever its
// sequence number; otherwise the sequence number must lie beyond what the
// old incarnation received (RFC 1122 4.2.2.13).
func (c *Conn) timeWaitReopens(seg *segment) bool {
	if c.ts && seg.opts.HasTimestamps {
		if c.pawsReject(seg) {
			return false
		}
		if tsBefore(c.tsRecent, seg.opts.TSVal) {
			return true
		}
	}
	return c.rcvNxt.LessThan(seg.seq)
}
