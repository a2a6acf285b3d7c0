package arp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Config configures New. Zero fields take their defaults.
type Config struct {
	// MAC is the stack's Ethernet address: the sender of every ARP packet
	// it sends.
	MAC net.HardwareAddr
	// Addrs are the stack's IPv4 addresses with their on-link prefixes
	// (198.18.0.2/15). The cache answers requests for them and announces
	// them; a request for a neighbour is sent from the address whose prefix
	// holds it, else from the first address. At least one.
	Addrs []netip.Prefix

	// MaxEntries bounds the table, static entries included. Default 1024.
	MaxEntries int
	// MaxQueue is how many packets may wait on one unresolved neighbour.
	// Default 8.
	MaxQueue int
	// MaxQueueBytes bounds the bytes of all waiting packets together.
	// Default 64 KiB.
	MaxQueueBytes int

	// ReachableTime is how long a confirmation keeps a neighbour Reachable.
	// Default 30 s.
	ReachableTime time.Duration
	// RetransTime is the wait between the requests of a resolution or
	// probe, and after the last before failure. Default 1 s (RFC 1122
	// 2.3.2.1 asks for at most one request per second per neighbour).
	RetransTime time.Duration
	// MaxRetries is how many requests follow the first before the neighbour
	// is declared Failed; at most 16. Default 2: requests at 0, 1 and 2 s
	// and failure at 3 s with the default RetransTime, as Linux's
	// mcast_solicit of 3 (a dial to a dead neighbour fails then, with
	// EHOSTUNREACH).
	MaxRetries int
	// FailedTime is how long a Failed neighbour makes Resolve answer
	// Unreachable before a packet for it starts a new resolution. Default 5 s.
	FailedTime time.Duration
	// LockTime is how long after a neighbour's MAC or state last changed
	// (or it was last confirmed) no ARP but a gratuitous one may give it
	// another MAC, as Linux's neigh locktime: when several replies answer
	// one request, the first wins. Default 1 s.
	LockTime time.Duration
}

// maxPendingReplies bounds the replies waiting for Output; more are dropped
// and counted, so a flood of requests between two Outputs costs no memory.
const maxPendingReplies = 256

// ErrFull is returned by AddStatic when every entry in the table is static.
var ErrFull = errors.New("arp: table full of static entries")

// Cache is an ARP neighbour cache for one Ethernet link (RFC 826, with the
// cache validation of RFC 1122 2.3.2.1 and the announcements and conflict
// detection of RFC 5227). It is not safe for concurrent use: it belongs to
// the poller goroutine of its queue.
type Cache struct {
	cfg Config
	mac [6]byte

	table  map[[4]byte]*entry
	lru    list     // non-static, non-failed entries, least recently updated first
	failed list     // Failed entries, oldest failure first
	timers []*entry // heap of entries Output has work for, earliest due first
	seq    uint64   // counts schedule calls, so equal due times run in order

	queuedBytes int

	announced int // addresses announced so far
	replies   [maxPendingReplies]pendingReply
	replyHead int // index of the oldest pending reply
	replyLen  int
	replyAt   time.Duration // when the oldest pending reply was queued

	// Failures not yet taken by NextFailure: a ring, oldest first.
	failures    [maxFailureNotices][4]byte
	failureHead int
	failureLen  int

	stats Stats
}

// maxFailureNotices bounds the failures waiting for NextFailure; more are
// dropped and counted (FailureNoticeDrops).
const maxFailureNotices = 16

// pendingReply is a reply to a request for one of our addresses.
type pendingReply struct {
	mac      [6]byte // the requester's
	from, to [4]byte // our address that was asked for, the requester's address
}

// New returns an empty cache with one announcement per address pending for
// the first Output.
func New(cfg Config) (*Cache, error) {
	c := &Cache{cfg: cfg}
	if len(cfg.MAC) != 6 || !unicastMAC([6]byte(cfg.MAC)) {
		return nil, fmt.Errorf("arp: MAC %v is not a unicast Ethernet address", cfg.MAC)
	}
	c.mac = [6]byte(cfg.MAC)
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("arp: no addresses")
	}
	for _, p := range cfg.Addrs {
		if !p.IsValid() || !neighbourIP(p.Addr()) {
			return nil, fmt.Errorf("arp: address %v is not a unicast IPv4 prefix", p)
		}
	}
	c.cfg.Addrs = slices.Clone(cfg.Addrs)
	if cfg.MaxRetries > 16 {
		return nil, fmt.Errorf("arp: MaxRetries %d above 16", cfg.MaxRetries)
	}
	cf := &c.cfg
	if err := errors.Join(
		orDefault("MaxEntries", &cf.MaxEntries, 1024),
		orDefault("MaxQueue", &cf.MaxQueue, 8),
		orDefault("MaxQueueBytes", &cf.MaxQueueBytes, 64<<10),
		orDefault("MaxRetries", &cf.MaxRetries, 2),
		orDefault("ReachableTime", &cf.ReachableTime, 30*time.Second),
		orDefault("RetransTime", &cf.RetransTime, time.Second),
		orDefault("FailedTime", &cf.FailedTime, 5*time.Second),
		orDefault("LockTime", &cf.LockTime, time.Second),
	); err != nil {
		return nil, err
	}
	c.table = make(map[[4]byte]*entry)
	return c, nil
}

// orDefault replaces a zero *v with def and refuses a negative one.
func orDefault[T int | time.Duration](name string, v *T, def T) error {
	if *v < 0 {
		return fmt.Errorf("arp: %s %v is negative", name, *v)
	}
	if *v == 0 {
		*v = def
	}
	return nil
}

// State is a neighbour's state; doc.go draws the machine.
type State uint8

// Neighbour states, after RFC 1122 2.3.2.1 and Linux's NUD states.
const (
	// Incomplete: requests are being broadcast; packets wait in the queue.
	Incomplete State = iota + 1
	// Reachable: confirmed by a reply to us within ReachableTime.
	Reachable
	// Stale: the MAC is known but unconfirmed. It is used, and the first
	// use starts a Probe.
	Stale
	// Probe: the MAC is used while requests revalidate it.
	Probe
	// Failed: no reply to MaxRetries+1 requests. Packets are refused as
	// Unreachable for FailedTime.
	Failed
	// Static: set by AddStatic; never changed by ARP and never evicted.
	Static
)

var stateNames = [...]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "PROBE", "FAILED", "STATIC"}

// String returns the state's name in capitals, as `ip neigh` prints it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// Entry is a snapshot of one neighbour, for display (`xdpnet arp`) and tests.
type Entry struct {
	IP    netip.Addr
	MAC   net.HardwareAddr // a copy; nil while Incomplete or Failed
	State State
	// Age is the time since the neighbour was last confirmed, or since its
	// MAC or state last changed.
	Age time.Duration
	// Queued is the number of packets waiting for the neighbour's MAC.
	Queued int
}

// Lookup returns the entry for ip at time now.
func (c *Cache) Lookup(now time.Duration, ip netip.Addr) (Entry, bool) {
	if !ip.Is4() {
		return Entry{}, false
	}
	e := c.table[ip.As4()]
	if e == nil {
		return Entry{}, false
	}
	return c.snapshot(e, now), true
}

// Entries calls fn with every entry at time now, in no particular order.
// fn must not call the cache.
func (c *Cache) Entries(now time.Duration, fn func(Entry)) {
	for _, e := range c.table {
		fn(c.snapshot(e, now))
	}
}

func (c *Cache) snapshot(e *entry, now time.Duration) Entry {
	s := c.stateAt(e, now)
	out := Entry{IP: e.ip, State: s, Age: now - e.updated, Queued: len(e.queue)}
	if s != Incomplete && s != Failed {
		out.MAC = net.HardwareAddr(append([]byte(nil), e.mac[:]...))
	}
	return out
}

// Stats counts what a Cache did. Counters only grow; Entries and
// QueuedBytes are the current values.
type Stats struct {
	RequestsIn  uint64 // valid requests received, RFC 5227 probes included
	RepliesIn   uint64 // valid replies received
	Malformed   uint64 // dropped: failed wire.ARP.Check, or an operation other than request or reply
	BadSender   uint64 // ignored: sender MAC not unicast or ours, or sender IP not a unicast IPv4 address
	Conflicts   uint64 // ignored: sender IP is one of ours (RFC 5227 2.4)
	Gratuitous  uint64 // gratuitous ARP received (sender IP = target IP); it updates a known neighbour, never adds one
	LockedOut   uint64 // ignored: a new MAC for a neighbour within LockTime of its last update
	Unsolicited uint64 // ignored: a new MAC for a known neighbour from ARP that answered no request of ours

	RequestsOut    uint64 // requests sent to resolve or probe a neighbour
	RepliesOut     uint64 // replies sent to requests for our addresses
	Announcements  uint64 // gratuitous ARP sent (RFC 5227 2.3 announcements)
	RepliesDropped uint64 // replies not sent: 256 were already waiting for Output

	Failures  uint64 // resolutions and probes that ended Failed
	Evictions uint64 // entries evicted to make room for another
	TableFull uint64 // entries not created: the table was full and no entry could be displaced
	// FailureNoticeDrops counts failures NextFailure never reported: more
	// than 16 came between two calls.
	FailureNoticeDrops uint64

	Queued      uint64 // packets queued by Resolve to wait for resolution
	Released    uint64 // queued packets sent by Output once resolved
	QueueDrops  uint64 // packets dropped for a queue bound, or queued on an evicted entry
	Unreachable uint64 // packets dropped: their neighbour Failed (queued, or offered to Resolve), or is no neighbour address

	Entries     int // entries in the table
	QueuedBytes int // bytes of packets waiting for resolution
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := c.stats
	s.Entries, s.QueuedBytes = len(c.table), c.queuedBytes
	return s
}

// own reports whether ip is one of the stack's addresses.
func (c *Cache) own(ip netip.Addr) bool {
	for _, p := range c.cfg.Addrs {
		if p.Addr() == ip {
			return true
		}
	}
	return false
}

// source is the address to send a request for ip from: ours on the same
// link, else the first.
func (c *Cache) source(ip netip.Addr) netip.Addr {
	for _, p := range c.cfg.Addrs {
		if p.Contains(ip) {
			return p.Addr()
		}
	}
	return c.cfg.Addrs[0].Addr()
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// neighbourIP reports whether ip can be a neighbour's address: IPv4 and not
// unspecified, loopback, multicast or the limited broadcast. Subnet-directed
// broadcasts are the IP layer's to recognise.
func neighbourIP(ip netip.Addr) bool {
	return ip.Is4() && !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsMulticast() && ip != limitedBroadcast
}

// unicastMAC reports whether m can be a host's address: neither zero nor
// multicast (which includes broadcast).
func unicastMAC(m [6]byte) bool { return m[0]&1 == 0 && m != [6]byte{} }
