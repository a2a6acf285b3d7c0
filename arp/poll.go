package arp

import (
	"net"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Output writes the next frame due at now into b, an Ethernet payload
// (typically a transmit frame after its Ethernet header), and describes
// it at wire.LayerLink: Out.DstMAC and Out.EtherType, wire.EtherTypeARP or, for a packet
// that waited for its neighbour, wire.EtherTypeIPv4. It reports false
// when nothing is due. The caller calls it until then, or until it has no
// transmit buffer: what is not taken stays due (Deadline says so) and
// comes first at the next call. In order: the gratuitous announcement of
// each address (first calls only), replies to requests for our
// addresses, then per neighbour, earliest due first: requests, failures,
// and the queued packets of newly resolved neighbours, in the order
// Resolve queued them. A queued packet longer than b is dropped and
// counted in QueueDrops: it came from a frame of the same size, so none
// is.
func (c *Cache) Output(now time.Duration, b []byte) (wire.Out, bool) {
	if c.announced < len(c.cfg.Addrs) {
		// RFC 5227 2.3: an announcement is a request with sender IP and
		// target IP both ours and a zero target MAC, broadcast.
		a := c.cfg.Addrs[c.announced].Addr()
		c.announced++
		c.stats.Announcements++
		return arpOut(b, wire.BroadcastMAC, wire.ARPFields{Op: wire.ARPRequest, SenderMAC: c.mac[:], SenderIP: a, TargetIP: a}), true
	}
	if c.replyLen > 0 {
		// RFC 826: the reply swaps the requester into the target fields and
		// puts our MAC and the address asked for in the sender fields; it
		// goes to the requester alone.
		r := &c.replies[c.replyHead]
		p := wire.ARPFields{Op: wire.ARPReply, SenderMAC: c.mac[:], SenderIP: netip.AddrFrom4(r.from), TargetMAC: r.mac[:], TargetIP: netip.AddrFrom4(r.to)}
		c.replyHead = (c.replyHead + 1) % len(c.replies)
		c.replyLen--
		c.stats.RepliesOut++
		return arpOut(b, r.mac[:], p), true
	}
	for len(c.timers) > 0 && c.timers[0].due <= now {
		if out, ok := c.run(now, c.timers[0], b); ok {
			return out, true
		}
	}
	return wire.Out{}, false
}

// arpOut writes p into b and describes it, to dst.
func arpOut(b []byte, dst net.HardwareAddr, p wire.ARPFields) wire.Out {
	return wire.Out{Len: p.Encode(b), DstMAC: [6]byte(dst), EtherType: wire.EtherTypeARP}
}

// run does the work of an entry that is due, writing into b what it
// sends; false if it sent nothing. Afterwards e is unscheduled, or
// rescheduled after now, or (with queued packets left) still due.
func (c *Cache) run(now time.Duration, e *entry, b []byte) (wire.Out, bool) {
	switch e.state {
	case Incomplete, Probe:
		if e.probes > c.cfg.MaxRetries {
			// RFC 1122 2.3.2.1: no answer to the last request; packets
			// waiting on the neighbour are dropped, and Resolve answers
			// Unreachable for FailedTime.
			c.stats.Unreachable += uint64(c.dropQueue(e))
			c.setState(e, Failed, now)
			c.unschedule(e)
			c.stats.Failures++
			c.noteFailure(e.ip.As4())
			return wire.Out{}, false
		}
		dst := wire.BroadcastMAC
		if e.state == Probe && e.probes == 0 {
			// RFC 1122 2.3.2.1 (2), unicast poll. Retries are broadcast
			// (doc.go says why).
			dst = e.mac[:]
		}
		c.stats.RequestsOut++
		e.probes++
		// One request per RetransTime, as Linux's retrans_time (RFC 1122
		// 2.3.2.1 asks for no more than one a second).
		c.schedule(e, now+c.cfg.RetransTime)
		// The target MAC is zero (nil), as RFC 5227 2.1.1 asks of requests.
		return arpOut(b, dst, wire.ARPFields{Op: wire.ARPRequest, SenderMAC: c.mac[:], SenderIP: c.source(e.ip), TargetIP: e.ip}), true
	default:
		for len(e.queue) > 0 {
			n := copy(b, e.queue[0])
			fits := n == len(e.queue[0])
			c.popFront(e)
			if !fits {
				c.stats.QueueDrops++
				continue
			}
			c.stats.Released++
			if len(e.queue) == 0 {
				c.unschedule(e)
			}
			return wire.Out{Len: n, DstMAC: e.mac, EtherType: wire.EtherTypeIPv4}, true
		}
		c.unschedule(e)
		return wire.Out{}, false
	}
}

// Deadline returns the earliest time at which Output has work, and false
// if it has none until the next Input or Resolve. A time at or before now
// means "call Output now"; before the first Output it is 0, for the
// announcements. Reachable entries turn Stale lazily, so their expiry needs
// no call.
func (c *Cache) Deadline() (time.Duration, bool) {
	var (
		at time.Duration
		ok bool
	)
	switch {
	case c.announced < len(c.cfg.Addrs):
		at, ok = 0, true
	case c.replyLen > 0:
		at, ok = c.replyAt, true
	}
	if len(c.timers) > 0 && (!ok || c.timers[0].due < at) {
		at, ok = c.timers[0].due, true
	}
	return at, ok
}

// noteFailure keeps ip, a neighbour that just failed, for NextFailure.
func (c *Cache) noteFailure(ip [4]byte) {
	if c.failureLen == maxFailureNotices {
		c.stats.FailureNoticeDrops++
		return
	}
	c.failures[(c.failureHead+c.failureLen)%maxFailureNotices] = ip
	c.failureLen++
}

// NextFailure returns the next neighbour that Output declared Failed, oldest
// first, and false when there is none: the owner ends what was waiting on
// it (Linux's ARP reports its failures to the sockets as host unreachable).
func (c *Cache) NextFailure() (netip.Addr, bool) {
	if c.failureLen == 0 {
		return netip.Addr{}, false
	}
	ip := c.failures[c.failureHead]
	c.failureHead = (c.failureHead + 1) % maxFailureNotices
	c.failureLen--
	return netip.AddrFrom4(ip), true
}
