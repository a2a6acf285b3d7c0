package arp

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Verdict is what Resolve did with a packet.
type Verdict uint8

// Resolve's verdicts.
const (
	// Send: the MAC is known; the caller sends the packet to it now.
	Send Verdict = iota
	// Queued: the cache copied the packet into the neighbour's queue;
	// Output sends it once the neighbour answers.
	Queued
	// Dropped: there was no room to queue the packet; it was counted in
	// Stats.QueueDrops.
	Dropped
	// Unreachable: the neighbour Failed recently, or ip cannot be a
	// neighbour. The packet was counted in Stats.Unreachable; the caller may
	// answer its source with ICMP Destination Unreachable, code 1 (host
	// unreachable, RFC 792).
	Unreachable
)

var verdictNames = [...]string{"Send", "Queued", "Dropped", "Unreachable"}

// String returns the verdict's name.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

// Resolve returns the MAC to send pkt to ip, the next hop: with verdict
// Send, the MAC, which aliases the cache's memory and is valid until the
// next call to the cache. Otherwise the MAC is nil and pkt, an IPv4 packet
// without its Ethernet header, was queued (copied; the caller keeps pkt) or
// dropped. Resolving a known neighbour does not allocate.
//
// The first packet for an unknown neighbour creates an Incomplete entry,
// evicting another if the table is full, and schedules a request for the
// next Output. Using a Stale neighbour starts a Probe. An empty pkt starts
// the resolution and queues nothing (to resolve a gateway ahead of
// traffic, say); the verdict is then Queued.
func (c *Cache) Resolve(now time.Duration, ip netip.Addr, pkt []byte) (net.HardwareAddr, Verdict) {
	if !ip.Is4() {
		c.stats.Unreachable++
		return nil, Unreachable
	}
	e := c.table[ip.As4()]
	if e == nil {
		if !neighbourIP(ip) || c.own(ip) {
			c.stats.Unreachable++
			return nil, Unreachable
		}
		if e = c.add(now, ip, true); e == nil {
			c.stats.QueueDrops++
			return nil, Dropped
		}
		c.start(now, e, Incomplete)
		return nil, c.enqueue(e, pkt)
	}
	switch c.stateAt(e, now) {
	case Reachable, Probe, Static:
		return e.mac[:], Send
	case Stale:
		// RFC 1122 2.3.2.1 (2), unicast poll: keep sending to the old MAC
		// while requests revalidate it.
		c.start(now, e, Probe)
		return e.mac[:], Send
	case Failed:
		if now-e.updated < c.cfg.FailedTime {
			c.stats.Unreachable++
			return nil, Unreachable
		}
		c.start(now, e, Incomplete)
	}
	return nil, c.enqueue(e, pkt)
}

// start begins a resolution (Incomplete) or a revalidation (Probe) of e:
// the next Output sends its first request.
func (c *Cache) start(now time.Duration, e *entry, s State) {
	c.setState(e, s, now)
	e.probes = 0
	c.schedule(e, now)
}

// AddStatic sets a permanent entry, as `ip neigh replace ... nud permanent`
// does: ARP never changes it and eviction never removes it. Packets queued
// for ip leave on the next Output. It fails if ip cannot be a neighbour, mac
// is not unicast, or the table is full of static entries (ErrFull).
func (c *Cache) AddStatic(now time.Duration, ip netip.Addr, mac net.HardwareAddr) error {
	if !neighbourIP(ip) || c.own(ip) {
		return fmt.Errorf("arp: static entry for %v: not a neighbour's IPv4 address", ip)
	}
	if len(mac) != 6 || !unicastMAC([6]byte(mac)) {
		return fmt.Errorf("arp: static entry for %v: %v is not a unicast Ethernet address", ip, mac)
	}
	e := c.table[ip.As4()]
	if e == nil {
		if e = c.add(now, ip, true); e == nil {
			return ErrFull
		}
	}
	e.mac = [6]byte(mac)
	c.setState(e, Static, now)
	c.settle(e, now)
	return nil
}

// settle follows a change that gave e a usable MAC outside a probe: the
// retry timer stops, and packets queued on e leave on the next Output.
func (c *Cache) settle(e *entry, now time.Duration) {
	if len(e.queue) > 0 {
		c.schedule(e, now)
	} else {
		c.unschedule(e)
	}
}
