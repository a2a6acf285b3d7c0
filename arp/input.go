package arp

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Input processes one received ARP packet, the payload of an Ethernet frame
// of type wire.EtherTypeARP. It never keeps a reference to a. It updates
// the table by RFC 826's merge rule, queues a reply when a asks for one of
// our addresses, and lets packets waiting on the sender leave on the next
// Poll. Malformed and bogus packets are counted and dropped.
func (c *Cache) Input(now time.Duration, a wire.ARP) {
	if a.Check() != nil {
		c.stats.Malformed++
		return
	}
	op := a.Op()
	switch op {
	case wire.ARPRequest:
		c.stats.RequestsIn++
	case wire.ARPReply:
		c.stats.RepliesIn++
	default:
		c.stats.Malformed++
		return
	}
	sha, spa, tpa := [6]byte(a.SenderMAC()), a.SenderIP(), a.TargetIP()
	forUs := c.own(tpa)
	switch {
	case !unicastMAC(sha) || sha == c.mac:
		c.stats.BadSender++
		return
	case spa.IsUnspecified():
		// RFC 5227 2.1.1: a probe (sender IP 0.0.0.0) is answered when it
		// asks for our address, so that the prober sees the address in use,
		// but it says nothing about the sender's address to learn.
		if op == wire.ARPRequest && forUs {
			c.reply(now, sha, tpa, spa)
		}
		return
	case c.own(spa):
		// RFC 5227 2.4: another host claims our address. Learning from it
		// would poison the table.
		c.stats.Conflicts++
		return
	case !neighbourIP(spa):
		c.stats.BadSender++
		return
	}

	// RFC 826, "Packet Reception": if the sender is in the table, update
	// its MAC (Merge_flag); if not, add it only when we are the target.
	confirm := op == wire.ARPReply && forUs
	if e := c.table[spa.As4()]; e != nil {
		c.merge(now, e, sha, confirm)
	} else if forUs {
		c.learn(now, spa, sha, confirm)
	}
	// RFC 826: "Is the opcode ares_op$REQUEST? Yes: ... send the packet to
	// the (new) target hardware address".
	if op == wire.ARPRequest && forUs {
		c.reply(now, sha, tpa, spa)
	}
}

// merge updates e from an ARP packet its neighbour sent. A reply addressed
// to us confirms the neighbour (Reachable). Any other packet only tells us
// its MAC: an entry without one, or with another one, goes Stale (as in
// Linux), and the same MAC again changes nothing. Static entries are left
// alone.
func (c *Cache) merge(now time.Duration, e *entry, mac [6]byte, confirm bool) {
	switch {
	case e.state == Static:
		return
	case confirm:
		e.mac = mac
		c.setState(e, Reachable, now)
	case e.state == Incomplete || e.state == Failed || e.mac != mac:
		e.mac = mac
		c.setState(e, Stale, now)
	default:
		return
	}
	c.settle(e, now)
}

// learn adds the sender of an ARP packet addressed to us. It may only
// displace a Failed or Stale entry: unsolicited ARP cannot push out a
// neighbour in use.
func (c *Cache) learn(now time.Duration, ip netip.Addr, mac [6]byte, confirm bool) {
	e := c.add(now, ip, false)
	if e == nil {
		return
	}
	e.mac = mac
	if confirm {
		c.setState(e, Reachable, now)
	} else {
		c.setState(e, Stale, now)
	}
}

// reply queues a reply from our address ours to the requester (mac, to).
func (c *Cache) reply(now time.Duration, mac [6]byte, ours, to netip.Addr) {
	if c.replyLen == len(c.replies) {
		c.stats.RepliesDropped++
		return
	}
	if c.replyLen == 0 {
		c.replyAt = now
	}
	c.replies[(c.replyHead+c.replyLen)%len(c.replies)] = pendingReply{mac: mac, from: ours.As4(), to: to.As4()}
	c.replyLen++
}
