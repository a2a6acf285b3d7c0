package ip

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// Addresses of the tests: we are 198.18.0.1/24 behind gateway .254.
var (
	ours    = netip.MustParseAddr("198.18.0.1")
	peer    = netip.MustParseAddr("198.18.0.2")
	gateway = netip.MustParseAddr("198.18.0.254")
	far     = netip.MustParseAddr("203.0.113.7")
	subBc   = netip.MustParseAddr("198.18.0.255")
	allBc   = netip.MustParseAddr("255.255.255.255")
)

func testConfig() Config {
	return Config{
		Addr:    netip.MustParsePrefix("198.18.0.1/24"),
		Gateway: gateway,
		Secret:  [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
	}
}

// newLayer returns a Layer for testConfig, changed by mod.
func newLayer(t testing.TB, mod ...func(*Config)) *Layer {
	t.Helper()
	c := testConfig()
	for _, m := range mod {
		m(&c)
	}
	l, err := New(c)
	require.NoError(t, err)
	return l
}

// pk describes an IPv4 packet to build byte by byte, independently of the
// code under test.
type pk struct {
	src, dst netip.Addr
	proto    uint8
	id       uint16
	tos, ttl uint8
	df, mf   bool
	off      int    // fragment offset in bytes, a multiple of 8
	opts     []byte // options, a multiple of 4 bytes
	payload  []byte
}

func (p pk) build() []byte {
	hl := 20 + len(p.opts)
	b := make([]byte, hl+len(p.payload))
	b[0] = 0x40 | byte(hl/4)
	b[1] = p.tos
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], p.id)
	frag := uint16(p.off / 8)
	if p.df {
		frag |= 0x4000
	}
	if p.mf {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = p.ttl
	b[9] = p.proto
	s, d := p.src.As4(), p.dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], p.opts)
	binary.BigEndian.PutUint16(b[10:], wire.Checksum(b[:hl], 0))
	copy(b[hl:], p.payload)
	return b
}

// fixSum recomputes the header checksum of b after a test edited it.
func fixSum(b []byte) []byte {
	hl := int(b[0]&0xf) * 4
	binary.BigEndian.PutUint16(b[10:], 0)
	binary.BigEndian.PutUint16(b[10:], wire.Checksum(b[:hl], 0))
	return b
}

// udpTo builds a UDP datagram from peer:5000 to ours:port with payload n
// bytes long.
func udpTo(port uint16, n int) []byte {
	u := make([]byte, 8+n)
	for i := range n {
		u[8+i] = byte(i)
	}
	wire.UDPFields{SrcPort: 5000, DstPort: port}.Encode(u, n, peer, ours)
	return pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: 1, ttl: 64, payload: u}.build()
}

// icmpMsg builds an ICMP message of type typ and code with rest (the
// second word) and data.
func icmpMsg(typ, code uint8, rest uint32, data []byte) []byte {
	m := make([]byte, 8+len(data))
	copy(m[8:], data)
	wire.ICMPFields{Type: typ, Code: code, Rest: rest}.Encode(m)
	return m
}

// checkInvariants asserts the counter identities Stats documents.
func checkInvariants(t testing.TB, l *Layer) {
	t.Helper()
	s := l.Stats()
	ip := s.IP
	require.Equal(t, ip.InReceives+ip.ReasmOKs,
		ip.InHdrErrors+ip.InAddrErrors+ip.ReasmReqds+ip.InDelivers+ip.InUnknownProtos, "IP counters: %+v", ip)
	require.LessOrEqual(t, ip.InCsumErrors, ip.InHdrErrors)
	require.LessOrEqual(t, ip.ReasmOverlaps+ip.ReasmTimeout, ip.ReasmFails)
	var in, out uint64
	for i := range 256 {
		in += s.ICMP.InType[i]
		out += s.ICMP.OutType[i]
	}
	require.Equal(t, s.ICMP.OutMsgs, out)
	require.LessOrEqual(t, in, s.ICMP.InMsgs)
	require.LessOrEqual(t, s.ICMP.InCsumErrors, s.ICMP.InErrors)
	// Reassembly memory: the free list and the held fragments account for
	// every block, and the arena never grows.
	r := &l.reasm
	held := 0
	for i := r.oldest; i >= 0; i = r.slots[i].newer {
		for j := r.slots[i].frags; j >= 0; j = r.recs[j].next {
			held += blocksOf(r, r.recs[j].block)
		}
	}
	require.Equal(t, r.nfree, countFree(r), "free count matches the free list")
	require.Equal(t, len(r.blockNext), held+r.nfree, "blocks leaked or double-freed")
	require.Equal(t, len(r.blockNext)*blockSize, len(r.arena))
}

func blocksOf(r *reassembler, b int32) int {
	n := 0
	for ; b >= 0; b = r.blockNext[b] {
		n++
	}
	return n
}

// countFree walks the free list.
func countFree(r *reassembler) int { return blocksOf(r, r.freeBlock) }

// tick calls Output and returns the length of what it wrote, or 0.
func tick(l *Layer, now time.Duration, out []byte) int {
	o, ok := l.Output(now, out)
	if !ok {
		return 0
	}
	return o.Len
}
