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
// Output. Malformed and bogus packets are counted and dropped.
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
	// its MAC (Merge_flag, within the limits of merge); if not, add it only
	// when we are the target. Gratuitous ARP is never addressed to us, so
	// it adds nobody, as in Linux with arp_accept=0.
	how := heard
	switch {
	case op == wire.ARPReply && forUs:
		how = confirmed
	case spa == tpa && (op == wire.ARPRequest || [6]byte(a.TargetMAC()) == sha):
		// RFC 5227 2.3 announcement, request or reply form; Linux
		// (arp_is_garp) asks a reply to carry the sender MAC as target MAC.
		how = gratuitous
		c.stats.Gratuitous++
	}
	if e := c.table[spa.As4()]; e != nil {
		c.merge(now, e, sha, how)
	} else if forUs {
		c.learn(now, spa, sha, how == confirmed)
	}
	// RFC 826: "Is the opcode ares_op$REQUEST? Yes: ... send the packet to
	// the (new) target hardware address".
	if op == wire.ARPRequest && forUs {
		c.reply(now, sha, tpa, spa)
	}
}

// claim is what a received ARP packet says about its sender's MAC.
type claim uint8

const (
	heard      claim = iota // any other packet: the sender uses this MAC
	confirmed               // a reply addressed to us: the sender answers at this MAC
	gratuitous              // an announcement: the sender says its MAC is this one
)

// merge updates e from an ARP packet its neighbour sent. A neighbour
// without a MAC (Incomplete, Failed) takes the one given, Reachable from a
// reply to us and Stale from anything else; the same MAC again is
// confirmed by a reply and otherwise changes nothing; static entries are
// left alone. A known neighbour's MAC is replaced only
//
//   - by gratuitous ARP, at any time, leaving it Stale (as Linux does with
//     arp_accept=0: its is_garp overrides the lock time), or
//   - by a reply to us that answers our Probe, and not within LockTime of
//     the entry's last update (Linux's locktime: the first reply wins).
//
// Linux lets any reply to us, and any other ARP from the sender, replace
// the MAC once the lock time is past, and a request for our address replace
// it at once; so one spoofed reply or request takes over a neighbour there.
// Here any other new MAC is refused and counted, and a Reachable entry goes
// Stale with its old MAC (RFC 4861 7.2.5's rule for an advertisement that
// does not claim to override): its next use probes the old MAC first, so
// the real neighbour confirms itself, and a neighbour that really moved
// answers a broadcast retry a RetransTime later.
func (c *Cache) merge(now time.Duration, e *entry, mac [6]byte, how claim) {
	s := c.stateAt(e, now)
	switch {
	case s == Static:
		return
	case s == Incomplete || s == Failed || mac == e.mac:
		if how == confirmed {
			c.setState(e, Reachable, now)
		} else if s == Incomplete || s == Failed {
			c.setState(e, Stale, now)
		} else {
			return
		}
		e.mac = mac
	case how == gratuitous:
		e.mac = mac
		c.setState(e, Stale, now)
	case now-e.updated <= c.cfg.LockTime:
		// Linux overrides only when time_after(now, updated + locktime).
		c.stats.LockedOut++
		return
	case how == confirmed && s == Probe:
		e.mac = mac
		c.setState(e, Reachable, now)
	default:
		c.stats.Unsolicited++
		if s == Reachable {
			c.setState(e, Stale, now)
		}
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
