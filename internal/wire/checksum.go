package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds b to the partial Internet checksum initial (RFC 1071) and
// returns the new partial sum, folded to at most 17 bits so that sums can
// be chained. Byte order does not matter to a ones' complement sum (RFC
// 1071 section 2(B)), so it adds 8 bytes at a time in the machine's order
// with the carries saved, and swaps once at the end.
func Sum(b []byte, initial uint32) uint32 {
	var acc, carry, c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		carry += c
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:]), 0)
		carry += c
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), 0)
		carry += c
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:]), 0)
		carry += c
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		carry += c
		b = b[8:]
	}
	if len(b) > 0 {
		// A trailing odd byte is the high byte of a big-endian word padded
		// with zero (RFC 1071 section 4.1): in little-endian order it is
		// the low byte, which the zero padding gives.
		var tail [8]byte
		copy(tail[:], b)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(tail[:]), 0)
		carry += c
	}
	// End-around carry: the carries out of bit 63 are worth 1 each.
	acc, c = bits.Add64(acc, carry, 0)
	acc += c
	s := acc>>32 + acc&0xffffffff // < 2^33
	s = s>>16 + s&0xffff          // < 2^17 + 2^16
	s = s>>16 + s&0xffff          // <= 0x10001
	s = s>>16 + s&0xffff          // <= 0xffff
	return Fold(initial) + uint32(bits.ReverseBytes16(uint16(s)))
}

// CopySum copies src into dst (which must be at least as long) and
// returns Sum(src, initial): the checksum is computed in the same pass as
// the copy, while each word is in a register, rather than in a second
// pass over the bytes.
func CopySum(dst, src []byte, initial uint32) uint32 {
	var acc, carry, c uint64
	n := len(src) &^ 31
	dst = dst[:len(src)]
	for i := 0; i < n; i += 32 {
		s, d := src[i:i+32], dst[i:i+32]
		w0, w1 := binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
		w2, w3 := binary.LittleEndian.Uint64(s[16:]), binary.LittleEndian.Uint64(s[24:])
		binary.LittleEndian.PutUint64(d, w0)
		binary.LittleEndian.PutUint64(d[8:], w1)
		binary.LittleEndian.PutUint64(d[16:], w2)
		binary.LittleEndian.PutUint64(d[24:], w3)
		acc, c = bits.Add64(acc, w0, 0)
		carry += c
		acc, c = bits.Add64(acc, w1, 0)
		carry += c
		acc, c = bits.Add64(acc, w2, 0)
		carry += c
		acc, c = bits.Add64(acc, w3, 0)
		carry += c
	}
	src, dst = src[n:], dst[n:]
	copy(dst, src)
	// The tail (under 32 bytes) goes through Sum, whose partial result
	// is in network order: add it after the swap below.
	tail := Sum(src, 0)
	acc, c = bits.Add64(acc, carry, 0)
	acc += c
	s := acc>>32 + acc&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return Fold(initial) + uint32(bits.ReverseBytes16(uint16(s))) + tail
}

// Fold folds a partial sum to 16 bits with end-around carries.
func Fold(s uint32) uint32 {
	// Two rounds suffice: after the first, s <= 0x1fffe.
	s = s&0xffff + s>>16
	return s&0xffff + s>>16
}

// Checksum returns the Internet checksum of b on top of the partial sum
// initial: the ones' complement of the ones' complement sum.
func Checksum(b []byte, initial uint32) uint16 {
	return ^uint16(Fold(Sum(b, initial)))
}

// PseudoHeaderSum is the partial sum of the IPv4 pseudo-header that UDP
// and TCP checksums cover (RFC 768, RFC 9293 3.1): source and destination
// address, protocol, and the transport length.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	s, d := src.As4(), dst.As4()
	return uint32(binary.BigEndian.Uint16(s[:2])) + uint32(binary.BigEndian.Uint16(s[2:])) +
		uint32(binary.BigEndian.Uint16(d[:2])) + uint32(binary.BigEndian.Uint16(d[2:])) +
		uint32(proto) + uint32(length)
}

// UpdateChecksum16 returns checksum csum after one 16-bit word it covers
// changed from old to new, without summing the data again: RFC 1624
// equation 3, HC' = ~(~HC + ~m + m').
func UpdateChecksum16(csum, old, new uint16) uint16 {
	return ^uint16(Fold(uint32(^csum) + uint32(^old) + uint32(new)))
}
