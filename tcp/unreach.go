package tcp

import (
	"net/netip"
	"slices"
	"time"
)

// Unreachable takes an ICMP error about a segment from local to remote
// that carried sequence number seq: a destination unreachable of the
// given code (0–15; fragmentation needed, code 4, goes to
// FragmentationNeeded instead), or a time exceeded with timeExceeded
// set. The poller also calls it for a segment whose next hop failed to
// resolve, as Linux's ARP reports its failures, with code 1 (host
// unreachable).
//
// Like FragmentationNeeded it is believed only if seq is in flight (RFC
// 5927 4.1). Then, as Linux's tcp_v4_err: a connection still opening
// ends with the code's error (RFC 1122 4.2.3.9 makes only some codes
// hard; Linux ends a connect on any, and a dial to a dead host fails
// fast that way); a connection the app has not seen yet (a listener's
// half-open one) ends silently, on the codes RFC 1122 calls hard only; a
// synchronized connection keeps the error as soft, to report it instead
// of ETIMEDOUT if its retransmissions run out.
func (t *Table) Unreachable(now time.Duration, local, remote netip.AddrPort, seq Seq, code uint8, timeExceeded bool) {
	t.now = now
	c := t.conns[tupleOf(local, remote)]
	if c == nil || !seq.InWindow(c.sndUna, uint32(c.sndMax.Sub(c.sndUna))) {
		return
	}
	err, hard := ErrHostUnreachable, false // time exceeded: Linux's EHOSTUNREACH, soft
	if !timeExceeded {
		if int(code) >= len(unreachErrs) {
			return
		}
		err, hard = unreachErrs[code].err, unreachErrs[code].hard
	}
	t.stats.ICMPErrors++
	switch {
	case c.state.synchronized():
		c.softErr = err
	case c.passive:
		if hard {
			c.fail(err)
		}
	default:
		c.fail(err)
	}
}

// unreachErrs maps an ICMP destination unreachable code to its errno and
// whether RFC 1122 4.2.3.9 (and Linux's icmp_err_convert) make it a hard
// error. Code 4, fragmentation needed, has no error: it changes the MSS.
var unreachErrs = [16]struct {
	err  error
	hard bool
}{
	{ErrNetUnreachable, false},  // 0 net unreachable
	{ErrHostUnreachable, false}, // 1 host unreachable
	{ErrProtoUnreachable, true}, // 2 protocol unreachable
	{ErrRefused, true},          // 3 port unreachable
	{nil, false},                // 4 fragmentation needed
	{ErrSourceRoute, false},     // 5 source route failed
	{ErrNetUnreachable, true},   // 6 destination network unknown
	{ErrHostDown, true},         // 7 destination host unknown
	{ErrHostIsolated, true},     // 8 source host isolated
	{ErrNetUnreachable, true},   // 9 network administratively prohibited
	{ErrHostUnreachable, true},  // 10 host administratively prohibited
	{ErrNetUnreachable, false},  // 11 network unreachable for TOS
	{ErrHostUnreachable, false}, // 12 host unreachable for TOS
	{ErrHostUnreachable, true},  // 13 communication administratively prohibited
	{ErrHostUnreachable, true},  // 14 host precedence violation
	{ErrHostUnreachable, true},  // 15 precedence cutoff in effect
}

// NeighbourFailed ends, with ErrHostUnreachable, every connection the
// app is dialling (SYN-SENT, or SYN-RECEIVED from a simultaneous open)
// whose next hop failed to resolve: those for which hop reports true of
// their remote address. The poller calls it when its neighbour cache
// declares a neighbour failed, so a dial to a dead on-link host fails
// after the ARP retries, not after the SYN retries, as on Linux. It
// visits only the connections being dialled, never the established or
// idle ones.
func (t *Table) NeighbourFailed(now time.Duration, hop func(remote netip.Addr) bool) {
	t.now = now
	for i := 0; i < len(t.dialing); i++ {
		c := t.dialing[i]
		if c.state != SynSent && c.state != SynReceived {
			continue
		}
		if hop(c.remote.Addr()) {
			t.stats.ICMPErrors++
			c.fail(ErrHostUnreachable)
		}
	}
	t.pruneDialing()
}

// addDialing puts c, just dialled, in the list NeighbourFailed visits,
// pruning the list of connections that are no longer opening whenever it
// has doubled, so it stays bounded by the dials in progress at a cost
// of O(1) per dial.
func (t *Table) addDialing(c *Conn) {
	if len(t.dialing) >= 2*t.dialingPruned+16 {
		t.pruneDialing()
	}
	t.dialing = append(t.dialing, c)
}

// pruneDialing drops the connections that are no longer opening from
// t.dialing.
func (t *Table) pruneDialing() {
	t.dialing = slices.DeleteFunc(t.dialing, func(c *Conn) bool { return c.state != SynSent && c.state != SynReceived })
	clear(t.dialing[len(t.dialing):cap(t.dialing)])
	t.dialingPruned = len(t.dialing)
}

// timeoutErr is the error of a connection whose retransmissions or
// keepalive probes ran out: the soft error an ICMP message left, if any,
// else ErrTimeout, as Linux's tcp_write_err.
func (c *Conn) timeoutErr() error {
	if c.softErr != nil {
		return c.softErr
	}
	return ErrTimeout
}
