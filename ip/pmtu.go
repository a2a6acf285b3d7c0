package ip

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
)

// minPMTU floors the path MTUs learned from ICMP: Linux's min_pmtu, 552
// bytes (512 of payload and two 20-byte headers). RFC 1191 section 3 only
// forbids going below 68; a higher floor stops a forged "fragmentation
// needed" from shrinking a connection to tiny segments.
const minPMTU = 552

// plateaus are RFC 1191 section 7's likely path MTUs (table 7-1), largest
// first, used when a router reports no next-hop MTU.
var plateaus = [...]int{32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68}

// pmtuWays is the associativity of the path MTU table.
const pmtuWays = 4

type pmtuEntry struct {
	dst     uint32
	mtu     int // 0: the way is free
	expires time.Duration
}

// pmtuTable holds learned path MTUs in a fixed number of entries: sets of
// pmtuWays ways, indexed by a keyed hash of the destination so that a peer
// cannot aim its entries at one set. A full set gives up its entry that
// expires first.
type pmtuTable struct {
	k0, k1 uint64
	sets   [][pmtuWays]pmtuEntry
	expiry time.Duration
}

func newPMTUTable(entries int, expiry time.Duration, k0, k1 uint64) pmtuTable {
	n := max(1, (entries+pmtuWays-1)/pmtuWays)
	return pmtuTable{k0: k0, k1: k1, sets: make([][pmtuWays]pmtuEntry, n), expiry: expiry}
}

func (t *pmtuTable) set(dst uint32) *[pmtuWays]pmtuEntry {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], dst)
	return &t.sets[siphash.Sum64(t.k0, t.k1, m[:])%uint64(len(t.sets))]
}

// get returns dst's learned path MTU, or 0 if none holds at now.
func (t *pmtuTable) get(now time.Duration, dst uint32) int {
	s := t.set(dst)
	for i := range s {
		e := &s[i]
		if e.mtu != 0 && e.dst == dst {
			if now >= e.expires {
				// RFC 1191 sections 3 and 6.3: after the timer (10 min
				// recommended), try the first-hop MTU again.
				e.mtu = 0
				return 0
			}
			return e.mtu
		}
	}
	return 0
}

// put records mtu as dst's path MTU until now + expiry.
func (t *pmtuTable) put(now time.Duration, dst uint32, mtu int) {
	s := t.set(dst)
	victim := &s[0]
	for i := range s {
		e := &s[i]
		if e.mtu != 0 && e.dst == dst || e.mtu == 0 || now >= e.expires {
			victim = e
			break
		}
		if e.expires < victim.expires {
			victim = e
		}
	}
	*victim = pmtuEntry{dst: dst, mtu: mtu, expires: now + t.expiry}
}

// PathMTU returns the path MTU to dst at now: the link MTU, unless an ICMP
// "fragmentation needed" taught a smaller one that has not expired. TCP
// sizes its segments by it (RFC 1191 section 6.4); UDP and ICMP may too.
func (l *Layer) PathMTU(now time.Duration, dst netip.Addr) int {
	if dst.Is4() {
		if m := l.pmtu.get(now, u32(dst)); m != 0 {
			return m
		}
	}
	return l.cfg.MTU
}

// fragNeeded applies an ICMP "fragmentation needed" about a datagram of
// quotedLen bytes we sent to dst, whose next-hop MTU field is nextHop, and
// returns the path MTU now in effect.
func (l *Layer) fragNeeded(now time.Duration, dst uint32, nextHop, quotedLen int) int {
	cur := l.PathMTU(now, addrFrom(dst))
	mtu := nextHop
	if mtu == 0 {
		// RFC 1191 section 5: a router that predates the field reports 0;
		// guess the largest plateau below the datagram it refused.
		mtu = plateaus[len(plateaus)-1]
		for _, p := range plateaus {
			if p < quotedLen {
				mtu = p
				break
			}
		}
	}
	mtu = max(mtu, min(minPMTU, l.cfg.MTU))
	if mtu >= cur {
		// RFC 1191 section 3: a Datagram Too Big message MUST NOT raise
		// the estimate.
		return cur
	}
	l.pmtu.put(now, dst, mtu)
	return mtu
}
