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
	var m [12]byte
	l, r := local.Addr().As4(), remote.Addr().As4()
	copy(m[0:4], l[:])
	binary.BigEndian.PutUint16(m[4:], local.Port())
	copy(m[6:10], r[:])
	binary.BigEndian.PutUint16(m[10:], remote.Port())
	return Seq(uint32(now/isnTick) + uint32(siphash.Sum64(g.k0, g.k1, m[:])))
}
