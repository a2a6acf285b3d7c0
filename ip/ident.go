package ip

import (
	"encoding/binary"
	"math/bits"
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
	h := sipHash24(t.k0, t.k1, m[:])
	c := &t.ctr[h%identBuckets]
	*c++
	return uint16(h>>48) + *c
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of p under the
// key (k0, k1), the keyed hash Linux uses for the same purpose.
func sipHash24(k0, k1 uint64, p []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	last := uint64(len(p)) << 56
	for ; len(p) >= 8; p = p[8:] {
		m := binary.LittleEndian.Uint64(p)
		v3 ^= m
		round()
		round()
		v0 ^= m
	}
	for i := len(p) - 1; i >= 0; i-- {
		last |= uint64(p[i]) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
