package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
)

// ISNs chooses initial sequence numbers as RFC 6528 section 3 says:
//
//	ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
//
// where M is a timer that ticks every 4 µs and F a keyed hash (SipHash-2-4,
// as Linux uses). A connection's ISN thus moves forward with time, as RFC
// 9293 3.4.1 wants, while an off-path attacker cannot guess it from other
// connections' numbers.
type ISNs struct{ k0, k1 uint64 }

// NewISNs returns a generator keyed by secret; a zero secret draws one
// from crypto/rand (simulations pass one to be reproducible).
func NewISNs(secret [16]byte) *ISNs {
	if secret == ([16]byte{}) {
		rand.Read(secret[:]) // crypto/rand.Read never fails (Go 1.24+)
	}
	return &ISNs{binary.LittleEndian.Uint64(secret[:8]), binary.LittleEndian.Uint64(secret[8:])}
}

// isnTick is the period of RFC 6528's timer M.
const isnTick = 4 * time.Microsecond

// ISN returns the initial sequence number for the connection from local
// to remote at time now. It does not allocate.
func (g *ISNs) ISN(now time.Duration, local, remote netip.AddrPort) Seq {
	m := tupleBytes(local, remote)
	return Seq(uint32(now/isnTick) + uint32(siphash.Sum64(g.k0, g.k1, m[:])))
}

// tupleBytes is the 4-tuple as the keyed hashes take it.
func tupleBytes(local, remote netip.AddrPort) [12]byte {
	var m [12]byte
	l, r := local.Addr().As4(), remote.Addr().As4()
	copy(m[0:4], l[:])
	binary.BigEndian.PutUint16(m[4:], local.Port())
	copy(m[6:10], r[:])
	binary.BigEndian.PutUint16(m[10:], remote.Port())
	return m
}

// TSOffset is the random offset of the timestamps (RFC 7323 7.1) a
// connection from local to remote sends: TSval is the offset plus a
// millisecond clock. Like the ISN it is a keyed hash of the 4-tuple (with
// a key of its own, so one does not tell the other), so no two
// connections' clocks can be compared by an observer, while every
// incarnation of one 4-tuple gets the same offset: its TSvals keep
// growing, which PAWS and the TIME-WAIT rules of the peer need (RFC 6191).
// (Linux keys its tsoffset by the two addresses alone, which keeps that
// property too.) It does not allocate.
func (g *ISNs) TSOffset(local, remote netip.AddrPort) uint32 {
	m := tupleBytes(local, remote)
	return uint32(siphash.Sum64(g.k0^tsKeyTweak, g.k1, m[:]))
}

// tsKeyTweak derives the timestamp offsets' key from the ISNs' one.
const tsKeyTweak = 0x5453_6f66_6673_6574 // "TSoffset"
