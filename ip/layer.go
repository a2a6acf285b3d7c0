package ip

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
)

// Config configures a Layer. The zero value of each optional field selects
// its default.
type Config struct {
	// Addr is the interface's address and its subnet, e.g. 198.18.0.1/15.
	// Required.
	Addr netip.Prefix

	// Secondary are more addresses of the interface, each in Addr's
	// subnet, as Linux's secondary addresses (ip addr add 198.18.0.11/24
	// on an interface that has 198.18.0.2/24): the layer takes datagrams
	// to each as to Addr, and answers from the address a datagram was
	// sent to. At most MaxSecondary; optional.
	Secondary []netip.Addr

	// Gateway is the default router for destinations outside the subnet.
	// Optional; when set it must lie inside the subnet (RFC 1122 section
	// 3.3.1.1: the first hop is on a connected network).
	Gateway netip.Addr

	// MTU is the link MTU: the largest IPv4 packet, header included, the
	// link carries; longer datagrams without DF go in fragments. Default
	// 1500; 68–65535.
	MTU int

	// TTL is the TTL of the datagrams the layer sends. Default 64 (RFC
	// 1122 section 3.2.1.7 wants it configurable; 64 is IANA's
	// recommendation and Linux's ip_default_ttl).
	TTL uint8

	// DontFragmentUDP sets DF on UDP datagrams too, as Linux's
	// IP_PMTUDISC_DO: they are never fragmented, so UDP must refuse those
	// over the MTU. TCP segments always carry DF (path MTU discovery, RFC
	// 1191); ICMP messages never do.
	DontFragmentUDP bool

	// Secret keys the hashes of the identification generator (RFC 7739
	// section 5.3) and of the path MTU table. It must be unpredictable to
	// peers. Zero means New draws one from crypto/rand; simulations set it
	// to be reproducible.
	Secret [16]byte

	// ReasmMemory caps the bytes of fragment payload held for reassembly,
	// counted in 512-byte blocks (a fragment occupies whole blocks).
	// Default 4 MiB (Linux's ipfrag_high_thresh); at least 128 KiB, so
	// that one datagram of the maximum size fits whatever its fragments.
	ReasmMemory int

	// ReasmDatagrams caps the datagrams under reassembly at once. Default 64.
	ReasmDatagrams int

	// ReasmTimeout is how long a datagram may take to reassemble, from its
	// first fragment. Default 30 s (Linux's ipfrag_time; RFC 1122 section
	// 3.3.2 suggests 60–120 s).
	ReasmTimeout time.Duration

	// PMTUEntries caps the path MTU table; it is rounded up to a multiple
	// of 4. Default 256.
	PMTUEntries int

	// PMTUExpiry is how long a learned path MTU holds before the link MTU
	// is tried again. Default 10 min (RFC 1191 section 3 recommends it;
	// Linux's mtu_expires). At least 5 min, RFC 1191's minimum, is wise.
	PMTUExpiry time.Duration

	// ICMPErrorRate and ICMPErrorBurst shape the token bucket that limits
	// the ICMP errors the layer sends: ICMPErrorRate per second, at most
	// ICMPErrorBurst at once. Defaults 1000 and 50 (Linux's
	// icmp_msgs_per_sec and icmp_msgs_burst).
	ICMPErrorRate, ICMPErrorBurst int
}

// Limits of IPv4 (RFC 791 section 3.1).
const (
	minMTU       = 68    // every module must pass this without fragmenting
	maxPacket    = 65535 // the total length field is 16 bits
	headerLen    = 20    // a header without options, as the layer writes
	maxHeaderLen = 60    // IHL is 4 bits of 32-bit words
)

// ErrConfig is wrapped by the errors New returns for a bad Config.
var ErrConfig = errors.New("ip: bad config")

func (c Config) withDefaults() (Config, error) {
	c.MTU = orDefault(c.MTU, 1500)
	if c.TTL == 0 {
		c.TTL = 64
	}
	c.ReasmMemory = orDefault(c.ReasmMemory, 4<<20)
	c.ReasmDatagrams = orDefault(c.ReasmDatagrams, 64)
	c.ReasmTimeout = orDefault(c.ReasmTimeout, 30*time.Second)
	c.PMTUEntries = orDefault(c.PMTUEntries, 256)
	c.PMTUExpiry = orDefault(c.PMTUExpiry, 10*time.Minute)
	c.ICMPErrorRate = orDefault(c.ICMPErrorRate, 1000)
	c.ICMPErrorBurst = orDefault(c.ICMPErrorBurst, 50)
	a := c.Addr.Addr()
	switch {
	case !c.Addr.IsValid() || !a.Is4() || martian(u32(a)):
		return c, fmt.Errorf("%w: Addr %v is not a unicast IPv4 prefix", ErrConfig, c.Addr)
	case c.Gateway.IsValid() && (!c.Gateway.Is4() || !c.Addr.Contains(c.Gateway) || c.Gateway == a):
		return c, fmt.Errorf("%w: Gateway %v is not another address in %v", ErrConfig, c.Gateway, c.Addr)
	case len(c.Secondary) > MaxSecondary:
		return c, fmt.Errorf("%w: %d secondary addresses, at most %d", ErrConfig, len(c.Secondary), MaxSecondary)
	case c.MTU < minMTU || c.MTU > maxPacket:
		return c, fmt.Errorf("%w: MTU %d outside %d–%d", ErrConfig, c.MTU, minMTU, maxPacket)
	case c.ReasmMemory < minReasmMemory:
		return c, fmt.Errorf("%w: ReasmMemory %d below %d", ErrConfig, c.ReasmMemory, minReasmMemory)
	case c.ReasmDatagrams < 0 || c.ReasmTimeout < 0 || c.PMTUEntries < 0 || c.PMTUExpiry < 0 ||
		c.ICMPErrorRate < 0 || c.ICMPErrorBurst < 0:
		return c, fmt.Errorf("%w: negative limit", ErrConfig)
	}
	seen := map[netip.Addr]bool{a: true}
	for _, s := range c.Secondary {
		switch {
		case !s.Is4() || martian(u32(s)) || !c.Addr.Contains(s):
			return c, fmt.Errorf("%w: secondary address %v is not a unicast IPv4 address in %v", ErrConfig, s, c.Addr.Masked())
		case c.Addr.Bits() <= 30 && (s == c.Addr.Masked().Addr() || u32(s)|^(^uint32(0)<<(32-c.Addr.Bits())) == u32(s)):
			return c, fmt.Errorf("%w: secondary address %v is %v's network or broadcast address", ErrConfig, s, c.Addr.Masked())
		case s == c.Gateway:
			return c, fmt.Errorf("%w: secondary address %v is the gateway", ErrConfig, s)
		case seen[s]:
			return c, fmt.Errorf("%w: address %v given twice", ErrConfig, s)
		}
		seen[s] = true
	}
	if c.Secret == [16]byte{} {
		// The one exception to "no system calls": once, at construction.
		rand.Read(c.Secret[:])
	}
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// MaxSecondary bounds Config.Secondary: with Addr, the addresses xdpnet's
// steering program holds (xdp/steer's MaxAddrs).
const MaxSecondary = 255

// Layer is the IPv4 and ICMPv4 layer of one NIC queue. It belongs to one
// goroutine, the queue's poller; no method is safe for concurrent use.
type Layer struct {
	cfg  Config
	addr uint32 // our address
	// secondary holds the secondary addresses; nil without any, so
	// that a stack of one address pays one comparison per datagram.
	secondary map[uint32]struct{}
	mask      uint32 // subnet mask
	bcast     uint32 // the subnet's directed broadcast; 0 for /31 and /32
	gw        uint32 // 0 without a gateway

	ids    idents
	pmtu   pmtuTable
	limit  tokenBucket
	reasm  reassembler
	ipst   IPStats
	icmpst ICMPStats
}

// New returns a Layer for cfg.
func New(cfg Config) (*Layer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Layer{cfg: cfg, addr: u32(cfg.Addr.Addr())}
	bits := cfg.Addr.Bits()
	l.mask = ^uint32(0) << (32 - bits) // 0 for /0: Go shifts by the width to zero
	if bits <= 30 {                    // RFC 3021: a /31 has no broadcast address
		l.bcast = l.addr | ^l.mask
		if l.bcast == l.addr {
			return nil, fmt.Errorf("%w: Addr %v is its subnet's broadcast address", ErrConfig, cfg.Addr)
		}
	}
	if cfg.Gateway.IsValid() {
		l.gw = u32(cfg.Gateway)
	}
	if len(cfg.Secondary) > 0 {
		l.secondary = make(map[uint32]struct{}, len(cfg.Secondary))
		for _, a := range cfg.Secondary {
			l.secondary[u32(a)] = struct{}{}
		}
	}
	k0 := binary.LittleEndian.Uint64(cfg.Secret[:8])
	k1 := binary.LittleEndian.Uint64(cfg.Secret[8:])
	l.ids = idents{k0: k0, k1: k1}
	l.pmtu = newPMTUTable(cfg.PMTUEntries, cfg.PMTUExpiry, siphash.Sum64(k0, k1, []byte("pmtu")), k1)
	l.limit = newTokenBucket(cfg.ICMPErrorRate, cfg.ICMPErrorBurst)
	l.reasm = newReassembler(cfg.ReasmMemory, cfg.ReasmDatagrams, cfg.ReasmTimeout, &l.ipst)
	return l, nil
}

// Addr is the layer's own address: the source of everything it sends
// unless told otherwise (WriteHeader's src, a reply from a secondary
// address), and the address transport checksums put in their
// pseudo-header.
func (l *Layer) Addr() netip.Addr { return l.cfg.Addr.Addr() }

// ours reports whether a is our address or one of the secondary ones.
func (l *Layer) ours(a uint32) bool {
	if a == l.addr {
		return true
	}
	_, ok := l.secondary[a]
	return ok
}

// MTU is the link MTU.
func (l *Layer) MTU() int { return l.cfg.MTU }

// Deadline is when Output next has work: the earliest reassembly
// timeout. ok is false when nothing is waiting. Path MTU entries expire
// lazily in PathMTU and need no call.
func (l *Layer) Deadline() (t time.Duration, ok bool) { return l.reasm.deadline() }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addrFrom(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
