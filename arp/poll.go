package arp

import (
	"net"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Sink takes what Poll sends, one frame at a time, so the poller can write
// each straight into a transmit buffer. The slices passed alias the cache's
// memory and are valid only during the call. A method returns false when no
// transmit buffer is free: Poll then stops, keeps the item, and offers it
// again on its next call (Deadline reports it due). A Sink must not call
// the Cache.
type Sink interface {
	// SendARP sends an ARP packet in an Ethernet frame to dst, from the
	// stack's MAC, with type wire.EtherTypeARP. p.Encode writes the packet.
	SendARP(dst net.HardwareAddr, p wire.ARPFields) bool
	// SendIP sends pkt, an IPv4 packet that waited for resolution, in an
	// Ethernet frame to dst, from the stack's MAC, with type
	// wire.EtherTypeIPv4.
	SendIP(dst net.HardwareAddr, pkt []byte) bool
}

// Poll hands out the work due at now, in this order: the gratuitous
// announcement of each address (first Poll only), replies to requests for
// our addresses, then per neighbour, earliest due first: requests,
// failures, and queued
// packets of newly resolved neighbours, in the order Resolve queued them.
// It sends nothing more once out refuses an item.
func (c *Cache) Poll(now time.Duration, out Sink) {
	for c.announced < len(c.cfg.Addrs) {
		// RFC 5227 2.3: an announcement is a request with sender IP and
		// target IP both ours and a zero target MAC, broadcast.
		a := c.cfg.Addrs[c.announced].Addr()
		if !out.SendARP(wire.BroadcastMAC, wire.ARPFields{Op: wire.ARPRequest, SenderMAC: c.mac[:], SenderIP: a, TargetIP: a}) {
			return
		}
		c.announced++
		c.stats.Announcements++
	}
	for c.replyLen > 0 {
		// RFC 826: the reply swaps the requester into the target fields and
		// puts our MAC and the address asked for in the sender fields; it
		// goes to the requester alone.
		r := &c.replies[c.replyHead]
		p := wire.ARPFields{Op: wire.ARPReply, SenderMAC: c.mac[:], SenderIP: netip.AddrFrom4(r.from), TargetMAC: r.mac[:], TargetIP: netip.AddrFrom4(r.to)}
		if !out.SendARP(r.mac[:], p) {
			return
		}
		c.replyHead = (c.replyHead + 1) % len(c.replies)
		c.replyLen--
		c.stats.RepliesOut++
	}
	for len(c.timers) > 0 && c.timers[0].due <= now {
		if !c.run(now, c.timers[0], out) {
			return
		}
	}
}

// run does the work of an entry that is due. It returns false if out
// refused an item; otherwise it has unscheduled e or rescheduled it after
// now.
func (c *Cache) run(now time.Duration, e *entry, out Sink) bool {
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
			return true
		}
		dst := wire.BroadcastMAC
		if e.state == Probe && e.probes == 0 {
			// RFC 1122 2.3.2.1 (2), unicast poll. Retries are broadcast
			// (doc.go says why).
			dst = e.mac[:]
		}
		// The target MAC is zero (nil), as RFC 5227 2.1.1 asks of requests.
		if !out.SendARP(dst, wire.ARPFields{Op: wire.ARPRequest, SenderMAC: c.mac[:], SenderIP: c.source(e.ip), TargetIP: e.ip}) {
			return false
		}
		c.stats.RequestsOut++
		e.probes++
		// One request per RetransTime, as Linux's retrans_time (RFC 1122
		// 2.3.2.1 asks for no more than one a second).
		c.schedule(e, now+c.cfg.RetransTime)
	default:
		for len(e.queue) > 0 {
			if !out.SendIP(e.mac[:], e.queue[0]) {
				return false
			}
			c.popFront(e)
			c.stats.Released++
		}
		c.unschedule(e)
	}
	return true
}

// Deadline returns the earliest time at which Poll has work, and false if
// it has none until the next Input or Resolve. A time at or before now
// means "call Poll now"; before the first Poll it is 0, for the
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

// NextFailure returns the next neighbour that Poll declared Failed, oldest
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
