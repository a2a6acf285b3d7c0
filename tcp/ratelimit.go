package tcp

import (
	"encoding/binary"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// ACK throttling (RFC 5961 7). An unacceptable segment is answered with an
// ACK, and a blind attacker who sends them (or two stacks that disagree on
// the window) could make a connection answer every one: an ACK loop, or a
// reflector. As Linux does (tcp_oow_rate_limited, tcp_send_challenge_ack):
//
//   - each connection sends at most one such ACK per
//     Config.InvalidRateLimit (tcp_invalid_ratelimit, 500 ms), challenge
//     ACKs included; a segment with data or a FIN and no SYN is exempt,
//     being no part of an ACK loop (its ACK may be the one a retransmission
//     waits for);
//   - challenge ACKs also draw on a budget per table and second
//     (tcp_challenge_ack_limit), set afresh each second to a keyed
//     pseudo-random count around the limit, so an attacker cannot count
//     what other connections spent (CVE-2016-5696).

// oowACK answers the unacceptable segment seg with an ACK unless the
// connection sent one too recently; skipped counts the ones held back.
func (c *Conn) oowACK(seg *segment, skipped *uint64) {
	if (seg.len() > 0 && !seg.has(wire.TCPFlagSYN)) || !c.oowLimited(skipped) {
		c.ackNow = true
	}
}

// oowLimited reports whether an ACK for an unacceptable segment must wait,
// counting it in skipped; if not, it records that one goes now.
func (c *Conn) oowLimited(skipped *uint64) bool {
	t := c.t
	if c.oowSent && t.now-c.oowAt < t.cfg.InvalidRateLimit {
		*skipped++
		return true
	}
	c.oowSent, c.oowAt = true, t.now
	return false
}

// challengeACK sends a challenge ACK (RFC 5961 3.2, 4.2, 5.2) within the
// connection's rate limit and the table's budget. In TIME-WAIT, as Linux's
// time-wait sockets, it is an ordinary out-of-window ACK.
func (c *Conn) challengeACK(seg *segment) {
	t := c.t
	if c.state == TimeWait {
		c.oowACK(seg, &t.stats.ACKSkippedTimeWait)
		return
	}
	if c.oowLimited(&t.stats.ACKSkippedChallenge) || !t.challengeBudget() {
		return
	}
	t.stats.ChallengeACKs++
	c.ackNow = true
}

// challengeBudget takes one challenge ACK from this second's budget, or
// reports that it is spent.
func (t *Table) challengeBudget() bool {
	limit := t.cfg.ChallengeACKLimit
	if limit < 0 {
		return true
	}
	if sec := int64(t.now / time.Second); !t.challengeStarted || sec != t.challengeEpoch {
		// Linux draws uniformly from [limit/2, limit/2 + limit): the
		// mean is the limit, and the count unknown to the peer.
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(sec))
		half := (limit + 1) / 2
		t.challengeLeft = half + int(siphash.Sum64(t.k1, t.k0, b[:])%uint64(limit))
		t.challengeEpoch, t.challengeStarted = sec, true
	}
	if t.challengeLeft == 0 {
		return false
	}
	t.challengeLeft--
	return true
}
