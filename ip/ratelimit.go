package ip

import "time"

// tokenBucket limits the ICMP errors the layer sends, so that a flood of
// bad datagrams is not echoed as a flood of errors (RFC 1812 section
// 4.3.2.8 asks routers for such a limit; hosts do likewise). It is one bucket for the whole layer, as Linux's
// icmp_msgs_per_sec/icmp_msgs_burst (1000 a second, bursts of 50); Linux's
// further per-destination limit (icmp_ratelimit) would need a peer table
// and is not done. Credit is kept in nanoseconds of virtual time, so it is
// exact: a message costs one interval, credit accrues one nanosecond per
// nanosecond, and it is capped at burst intervals. The bucket starts full.
type tokenBucket struct {
	interval time.Duration // the cost of one message
	cap      time.Duration // burst × interval
	credit   time.Duration
	last     time.Duration
	started  bool
}

func newTokenBucket(perSec, burst int) tokenBucket {
	iv := time.Second / time.Duration(perSec)
	return tokenBucket{interval: iv, cap: iv * time.Duration(burst)}
}

// allow takes a token at now, or reports false if none is left.
func (b *tokenBucket) allow(now time.Duration) bool {
	switch {
	case !b.started:
		b.started, b.credit, b.last = true, b.cap, now
	case now > b.last:
		if el := now - b.last; el >= b.cap-b.credit {
			b.credit = b.cap
		} else {
			b.credit += el
		}
		b.last = now
	}
	if b.credit < b.interval {
		return false
	}
	b.credit -= b.interval
	return true
}
