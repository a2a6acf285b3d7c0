package fastpath

import (
	"encoding/binary"
	"net/netip"
)

// defaultRSSKey is the 40-byte Toeplitz key of Microsoft's RSS
// specification, which many drivers use by default. With it, and without
// a key read from the NIC, the pollers still agree on which of them owns
// a flow, which is all correctness needs; only a key that matches the
// NIC's also saves the handovers.
var defaultRSSKey = []byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// toeplitz is the Toeplitz hash of input under key, as NICs compute RSS:
// for every set bit of the input, XOR in the 32 key bits starting at that
// bit's position. key must be at least len(input)+4 bytes.
func toeplitz(key, input []byte) uint32 {
	var h uint32
	window := binary.BigEndian.Uint32(key) // key bits [i, i+32)
	for i, b := range input {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				h ^= window
			}
			// Slide the window one bit: in comes bit 32+8i+(7-bit) of the key.
			next := key[4+i] >> bit & 1
			window = window<<1 | uint32(next)
		}
	}
	return h
}

// RSS is how a NIC spreads flows over its queues: the Toeplitz key and
// the indirection table (hash modulo its length gives the queue). The
// zero value spreads by the default key and hash modulo the queue count.
type RSS struct {
	Key   []byte
	Indir []uint32
	// table holds the hash's contribution of each byte value at each of
	// the 12 input positions: the Toeplitz hash is linear over XOR, so a
	// segment's hash is 12 lookups instead of 96 key-window steps (it is
	// computed for every TCP segment of a multi-queue stack). Built on
	// first use, by the poller.
	table *[rssInput][256]uint32
}

// rssInput is the length of the hash input of IPv4 TCP: two addresses
// and two ports.
const rssInput = 12

// hash is the Toeplitz hash of in under the key, through the table.
func (r *RSS) hash(in *[rssInput]byte) uint32 {
	if r.table == nil {
		key := r.Key
		if len(key) < rssInput+4 {
			key = defaultRSSKey
		}
		r.table = new([rssInput][256]uint32)
		var one [rssInput]byte
		for i := range rssInput {
			for v := range 256 {
				one[i] = byte(v)
				r.table[i][v] = toeplitz(key, one[:])
			}
			one[i] = 0
		}
	}
	var h uint32
	for i, b := range in {
		h ^= r.table[i][b]
	}
	return h
}

// queueOf is the queue the NIC steers a TCP segment from src to dst to.
func (r *RSS) queueOf(src, dst netip.AddrPort, queues int) int {
	var in [rssInput]byte
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(in[0:4], s[:])
	copy(in[4:8], d[:])
	binary.BigEndian.PutUint16(in[8:], src.Port())
	binary.BigEndian.PutUint16(in[10:], dst.Port())
	h := r.hash(&in)
	if len(r.Indir) > 0 {
		return int(r.Indir[h%uint32(len(r.Indir))]) % queues
	}
	return int(h % uint32(queues))
}
