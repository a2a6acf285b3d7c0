package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// sent returns a UDP datagram of total bytes from ours:4000 to dst:53, as
// the layer would send it, for an ICMP error to quote.
func sent(t testing.TB, l *Layer, dst netip.Addr, total int) []byte {
	t.Helper()
	b := make([]byte, total)
	wire.UDPFields{SrcPort: 4000, DstPort: 53}.Encode(b[20:], total-28, ours, dst)
	_, err := l.WriteHeader(b, netip.Addr{}, dst, wire.ProtoUDP, total-20)
	require.NoError(t, err)
	return b
}

// icmpError builds an ICMP error from the gateway to us quoting the
// header and first 8 data bytes of q.
func icmpError(typ, code uint8, rest uint32, q []byte) []byte {
	quote := q[:min(len(q), wire.IPv4(q).HeaderLen()+8)]
	return pk{src: gateway, dst: ours, proto: wire.ProtoICMP, ttl: 64, payload: icmpMsg(typ, code, rest, quote)}.build()
}

// fragNeeded feeds l a "fragmentation needed" with next-hop MTU mtu about a
// datagram of total bytes to dst, and returns the event.
func fragNeeded(t *testing.T, l *Layer, now time.Duration, dst netip.Addr, mtu, total int) ICMPEvent {
	t.Helper()
	d, ok := l.Input(now, icmpError(wire.ICMPDestUnreachable, wire.ICMPFragNeeded, uint32(mtu), sent(t, l, dst, total)))
	require.True(t, ok)
	n, ev := l.ICMPInput(now, d, nil)
	require.Zero(t, n)
	return ev
}

func TestFragNeededLowersPathMTU(t *testing.T) {
	l := newLayer(t)
	assert.Equal(t, 1500, l.PathMTU(0, far), "the link MTU until told otherwise")
	ev := fragNeeded(t, l, time.Second, far, 1400, 1500)
	assert.Equal(t, EventError, ev.Kind)
	assert.Equal(t, far, ev.Dst)
	assert.Equal(t, 1400, ev.MTU)
	assert.Equal(t, 1400, l.PathMTU(time.Second, far))
	assert.Equal(t, 1500, l.PathMTU(time.Second, peer), "other destinations keep the link MTU")

	// Never raised by a Datagram Too Big (RFC 1191 section 3).
	ev = fragNeeded(t, l, 2*time.Second, far, 1450, 1400)
	assert.Equal(t, 1400, ev.MTU)
	assert.Equal(t, 1400, l.PathMTU(2*time.Second, far))
	// Lowered further.
	fragNeeded(t, l, 3*time.Second, far, 1280, 1400)
	assert.Equal(t, 1280, l.PathMTU(3*time.Second, far))

	// Expiry: 10 minutes after the last decrease, the link MTU again.
	exp := 3*time.Second + 10*time.Minute
	assert.Equal(t, 1280, l.PathMTU(exp-1, far))
	assert.Equal(t, 1500, l.PathMTU(exp, far))
	assert.Equal(t, 1500, l.PathMTU(exp+time.Hour, far))
	assert.EqualValues(t, 3, l.Stats().ICMP.InDestUnreachs)
}

func TestFragNeededFloor(t *testing.T) {
	l := newLayer(t)
	for _, mtu := range []int{551, 200, 68, 67, 1} {
		ev := fragNeeded(t, l, 0, far, mtu, 1500)
		assert.Equal(t, minPMTU, ev.MTU, "next-hop MTU %d", mtu)
		assert.Equal(t, minPMTU, l.PathMTU(0, far))
	}
	// A link MTU below the floor is the floor.
	small := newLayer(t, func(c *Config) { c.MTU = 300 })
	ev := fragNeeded(t, small, 0, far, 100, 300)
	assert.Equal(t, 300, ev.MTU, "never above the link MTU")
}

func TestFragNeededWithoutNextHopMTUUsesPlateaus(t *testing.T) {
	// RFC 1191 section 5: an old router reports 0; take the largest
	// plateau below the refused datagram's length.
	for _, c := range []struct{ total, want int }{
		{1500, 1492}, {1492, 1006}, {1006, minPMTU}, {9000, 8166}, {8166, 4352},
	} {
		l := newLayer(t, func(cf *Config) { cf.MTU = 9000 })
		ev := fragNeeded(t, l, 0, far, 0, c.total)
		assert.Equal(t, c.want, ev.MTU, "datagram of %d", c.total)
	}
}

func TestPathMTUTableBounded(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.PMTUEntries = 8 })
	assert.Len(t, l.pmtu.sets, 2)
	dsts := make([]netip.Addr, 100)
	for i := range dsts {
		dsts[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		fragNeeded(t, l, time.Duration(i)*time.Millisecond, dsts[i], 1000+i, 1500)
	}
	held := 0
	for i, d := range dsts {
		if m := l.PathMTU(time.Second, d); m != 1500 {
			assert.Equal(t, 1000+i, m)
			held++
		}
	}
	assert.Equal(t, 8, held, "the table holds its size and the newest entries")
	assert.Equal(t, 1099, l.PathMTU(time.Second, dsts[99]), "the newest is kept: the entry expiring first goes")
}
