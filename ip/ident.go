package ip

import (
	"encoding/binary"

	"github.com/xdpnet/xdpnet/internal/siphash"
)

// identBuckets is the size of the identification counter table, as
// Linux's IP_IDENTS_SZ.
const identBuckets = 2048

// idents chooses the identification field of outgoing datagrams by RFC
// 7739 section 5.3's hash-based algorithm (written for IPv6 fragment IDs;
// it suits IPv4's 16-bit field unchanged, and Linux's ip_idents is the
// same idea):
//
//	index = F(dst, proto, secret) mod TABLE_LENGTH
//	offset = G(dst, proto, secret)
//	table[index]++
//	ID = offset + table[index]
//
// One keyed SipHash-2-4 output gives both F (its low bits) and G (its top
// 16 bits), independent since the bits of a pseudo-random function are.
// So a destination sees consecutive IDs from an unpredictable start, IDs
// sent to one destination say nothing about those sent to another (unless
// both fall in the same bucket, 1 in 2048, which then reveals only how many
// datagrams went to the other), and no global counter leaks the host's
// packet rate to an idle scan. The source address is fixed per Layer, so
// it is left out of the hash.
type idents struct {
	k0, k1 uint64
	ctr    [identBuckets]uint16
}

// next returns the identification for a datagram to dst of protocol proto.
func (t *idents) next(dst uint32, proto uint8) uint16 {
	var m [8]byte
	binary.LittleEndian.PutUint32(m[:], dst)
	m[4] = proto
	h := siphash.Sum64(t.k0, t.k1, m[:])
	c := &t.ctr[h%identBuckets]
	*c++
	return uint16(h>>48) + *c
}
