package ip

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// peerLayer is the layer of the test's peer, 198.18.0.2/24: it reassembles
// what ours sends it.
func peerLayer(t testing.TB) *Layer {
	return newLayer(t, func(c *Config) { c.Addr = netip.MustParsePrefix("198.18.0.2/24") })
}

// udpDatagram writes with l's WriteHeader a UDP datagram to peer whose
// payload (UDP header and data) is payloadLen bytes of a pattern.
func udpDatagram(t testing.TB, l *Layer, payloadLen int) wire.IPv4 {
	t.Helper()
	pkt := make([]byte, headerLen+payloadLen)
	copy(pkt[headerLen:], pattern(payloadLen, 5))
	_, err := l.WriteHeader(pkt, netip.Addr{}, peer, wire.ProtoUDP, payloadLen)
	require.NoError(t, err)
	return pkt
}

// cut returns the fragments of pkt for mtu, each checked against RFC 791
// section 3.2: within mtu, the header's fields kept, DF clear, offsets
// contiguous in 8-byte units, MF on all but the last, every fragment but
// the last carrying a multiple of 8 bytes, the data the datagram's.
func cut(t *testing.T, l *Layer, pkt wire.IPv4, mtu int) [][]byte {
	t.Helper()
	n := Fragments(pkt, mtu)
	require.Positive(t, n)
	hl, payload := pkt.HeaderLen(), pkt.Payload()
	var fs [][]byte
	var data []byte
	for i := range n {
		b := make([]byte, mtu+8) // room to spare, to see overruns
		m := l.WriteFragment(b, pkt, mtu, i)
		f := wire.IPv4(b[:m])
		require.NoError(t, f.Check(), "fragment %d", i)
		require.LessOrEqual(t, m, mtu, "fragment %d", i)
		require.True(t, f.ChecksumValid(), "fragment %d", i)
		require.Equal(t, m, f.TotalLen())
		require.Equal(t, hl, f.HeaderLen(), "every fragment keeps the header length")
		require.Equal(t, pkt.ID(), f.ID(), "one identification for all")
		require.Equal(t, pkt.Src(), f.Src())
		require.Equal(t, pkt.Dst(), f.Dst())
		require.Equal(t, pkt.Protocol(), f.Protocol())
		require.Equal(t, pkt.TTL(), f.TTL())
		require.Equal(t, pkt.TOS(), f.TOS())
		require.False(t, f.DontFragment())
		require.Equal(t, len(data), f.FragmentOffset(), "fragment %d follows the one before", i)
		require.Equal(t, i < n-1, f.MoreFragments(), "MF on all but the last (%d of %d)", i, n)
		if i < n-1 {
			require.Zero(t, len(f.Payload())%8, "fragment %d: a multiple of 8 bytes", i)
			require.Greater(t, m+8, mtu, "fragment %d fills the MTU to the 8-byte unit", i)
		}
		require.NotEmpty(t, f.Payload())
		data = append(data, f.Payload()...)
		fs = append(fs, f)
	}
	require.Equal(t, []byte(payload), data, "the fragments carry the payload")
	return fs
}

func TestFragmentSizesAtMTUBoundaries(t *testing.T) {
	l := newLayer(t)
	for _, mtu := range []int{68, 69, 75, 76, 83, 576, 577, 1006, 1499, 1500, 1501, 9000} {
		per := (mtu - 20) &^ 7
		for _, size := range []int{mtu - 19, mtu - 20 + 1, per + 1, 2 * per, 2*per + 1, 3*per - 1, 8000, maxPacket - 20} {
			if size+20 <= mtu || size > maxPacket-20 {
				continue
			}
			pkt := udpDatagram(t, l, size)
			fs := cut(t, l, pkt, mtu)
			require.Len(t, fs, (size+per-1)/per, "MTU %d, payload %d", mtu, size)
		}
	}
	// At MTU 1500 a fragment carries 1480 bytes: 3000 bytes of ICMP
	// (ping -s 2992) make 1480 + 1480 + 40, as Linux cuts them.
	fs := cut(t, l, udpDatagram(t, l, 3000), 1500)
	require.Len(t, fs, 3)
	assert.Equal(t, []int{1500, 1500, 60}, []int{len(fs[0]), len(fs[1]), len(fs[2])})
	assert.Equal(t, []int{0, 1480, 2960}, []int{wire.IPv4(fs[0]).FragmentOffset(), wire.IPv4(fs[1]).FragmentOffset(), wire.IPv4(fs[2]).FragmentOffset()})
	// The largest datagram.
	assert.Len(t, cut(t, l, udpDatagram(t, l, maxPacket-20), 1500), 45)
	s := l.Stats().IP
	assert.Positive(t, s.FragOKs)
	assert.Greater(t, s.FragCreates, 2*s.FragOKs)
}

func TestFragmentNotNeededOrNotAllowed(t *testing.T) {
	l := newLayer(t)
	out := make([]byte, 1500)
	// A datagram that fits goes whole, untouched.
	pkt := udpDatagram(t, l, 1480)
	require.Equal(t, 1, Fragments(pkt, 1500))
	require.Equal(t, 1500, l.WriteFragment(out, pkt, 1500, 0))
	assert.Equal(t, []byte(pkt), out)
	// DF forbids fragmenting: the datagram goes whole for the path to
	// refuse (RFC 791 section 3.2), here a path MTU below the link's.
	df := newLayer(t, func(c *Config) { c.DontFragmentUDP = true })
	pkt = udpDatagram(t, df, 1400)
	require.True(t, pkt.DontFragment())
	require.Equal(t, 1, Fragments(pkt, 576))
	require.Equal(t, 1420, df.WriteFragment(out, pkt, 576, 0))
	assert.Equal(t, []byte(pkt), out[:1420])
	// An MTU that cannot hold the header and 8 bytes, and a datagram that
	// is a fragment already, cannot be cut.
	big := pk{src: ours, dst: peer, proto: wire.ProtoUDP, opts: make([]byte, 40), payload: pattern(100, 0)}.build()
	assert.Zero(t, Fragments(big, 67))
	assert.Equal(t, 13, Fragments(big, 68), "100 bytes, 8 behind each 60-byte header")
	assert.Zero(t, Fragments(frag(1, 0, true, pattern(2000, 0)), 1500))
	assert.Zero(t, l.Stats().IP.FragOKs+df.Stats().IP.FragOKs, "nothing was cut")
}

func TestFragmentOptions(t *testing.T) {
	l := newLayer(t)
	// Options: a NOP, record route (7, not copied), LSRR (0x83, copied),
	// and an end of list; 24 bytes.
	rr := []byte{7, 7, 4, 0, 0, 0, 0}
	lsrr := []byte{0x83, 11, 4, 198, 18, 0, 9, 198, 18, 0, 2}
	opts := append(append(append([]byte{1}, rr...), lsrr...), 0, 0, 0, 0, 0)
	require.Len(t, opts, 24)
	pkt := wire.IPv4(pk{src: ours, dst: peer, proto: wire.ProtoUDP, ttl: 64, id: 7, opts: opts, payload: pattern(3000, 1)}.build())
	fs := cut(t, l, pkt, 1500)
	require.Len(t, fs, 3)
	assert.Equal(t, opts, []byte(wire.IPv4(fs[0]).Options()), "the first fragment keeps every option")
	later := append(append(append([]byte{1}, 1, 1, 1, 1, 1, 1, 1), lsrr...), 0, 0, 0, 0, 0)
	for _, f := range fs[1:] {
		assert.Equal(t, later, []byte(wire.IPv4(f).Options()), "RFC 791: only copied options in later fragments")
	}
	// A malformed option list is left as it is from the bad length on.
	bad := []byte{7, 3, 0, 9, 1, 0, 0, 0}
	dropUncopiedOptions(bad)
	assert.Equal(t, []byte{1, 1, 1, 9, 1, 0, 0, 0}, bad)
}

// TestFragmentsReassemble sends our fragments, in random orders, through
// the reassembly of a second layer.
func TestFragmentsReassemble(t *testing.T) {
	l, p := newLayer(t), peerLayer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		mtu := 68 + rng.IntN(9000-68)
		size := 1 + rng.IntN(maxPacket-20)
		if rng.IntN(4) == 0 {
			size = 1 + rng.IntN(3*mtu)
		}
		if size+20 <= mtu {
			continue
		}
		pkt := udpDatagram(t, l, size)
		fs := cut(t, l, pkt, mtu)
		if len(fs) > maxFrags {
			continue // more than the reassembler takes
		}
		rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		var d Datagram
		ok := false
		for i, f := range fs {
			d, ok = p.Input(0, f)
			require.Equal(t, i == len(fs)-1, ok, "MTU %d, payload %d: fragment %d of %d", mtu, size, i, len(fs))
		}
		require.Equal(t, []byte(pkt.Payload()), d.Payload, "MTU %d, payload %d", mtu, size)
		require.Equal(t, ours, d.Src)
		require.EqualValues(t, wire.ProtoUDP, d.Proto)
	}
	s := p.Stats().IP
	assert.Positive(t, s.ReasmOKs)
	assert.Zero(t, s.ReasmFails)
	checkInvariants(t, p)
}

// TestEchoReplyFragmentsReassemble: a 3000-byte ping's request reassembled
// here, answered in place and cut at 1500 bytes, reassembles at the peer
// into the request's data.
func TestEchoReplyFragmentsReassemble(t *testing.T) {
	l, p := newLayer(t), peerLayer(t)
	for _, size := range []int{1473, 2992, 8000, maxPacket - 28} {
		data := pattern(size, 3)
		d, ok := feed(t, l, 0, splitAs(uint16(size), wire.ProtoICMP, icmpMsg(wire.ICMPEcho, 0, 0x00420007, data), 1480)...)
		require.True(t, ok, "request of %d", size)
		n, _ := l.ICMPInput(0, d, d.Header)
		require.Equal(t, 28+size, n)
		fs := cut(t, l, d.Header[:n], 1500)
		var r Datagram
		for _, f := range fs {
			r, ok = p.Input(0, f)
		}
		require.True(t, ok, "reply of %d", size)
		m := wire.ICMP(r.Payload)
		require.True(t, m.ChecksumValid())
		require.EqualValues(t, wire.ICMPEchoReply, m.Type())
		require.EqualValues(t, 0x42, m.ID())
		require.EqualValues(t, 7, m.Seq())
		require.Equal(t, data, []byte(m.Payload()), "payload %d", size)
	}
}

func TestWriteHeaderSizes(t *testing.T) {
	l := newLayer(t)
	b := make([]byte, 20)
	_, err := l.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, maxPacket-20)
	assert.NoError(t, err, "UDP without DF: up to 65,535 bytes, for fragmenting")
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoICMP, maxPacket-20)
	assert.NoError(t, err)
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, maxPacket-19)
	assert.ErrorIs(t, err, ErrTooBig)
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoTCP, 1481)
	assert.ErrorIs(t, err, ErrTooBig, "TCP carries DF: the MTU at most")
	df := newLayer(t, func(c *Config) { c.DontFragmentUDP = true })
	_, err = df.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, 1480)
	assert.NoError(t, err)
	_, err = df.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, 1481)
	assert.ErrorIs(t, err, ErrTooBig, "UDP with DF: the MTU at most")
}

// FuzzFragment cuts datagrams of any size, with any option bytes, at any
// MTU: no fragment exceeds the MTU, and the peer's reassembly gives back
// the payload.
func FuzzFragment(f *testing.F) {
	f.Add(uint16(3000), uint16(1500), []byte{})
	f.Add(uint16(65515), uint16(68), []byte{7, 7, 4, 0, 0, 0, 0, 1})
	f.Add(uint16(100), uint16(76), []byte{0x83, 3, 9, 0xff})
	l, p := newLayer(f), peerLayer(f)
	f.Fuzz(func(t *testing.T, size, mtu uint16, opts []byte) {
		opts = opts[:min(len(opts), 40)&^3]
		if int(size)+20+len(opts) > maxPacket || mtu < minMTU {
			return
		}
		pkt := wire.IPv4(pk{src: ours, dst: peer, proto: wire.ProtoUDP, ttl: 64, id: size, opts: opts, payload: pattern(int(size), byte(mtu))}.build())
		n := Fragments(pkt, int(mtu))
		if n == 0 {
			require.Less(t, int(mtu), pkt.HeaderLen()+8, "only a header that leaves no 8 bytes cannot be cut")
			return
		}
		b := make([]byte, maxPacket)
		var d Datagram
		ok := false
		for i := range n {
			m := l.WriteFragment(b, pkt, int(mtu), i)
			if n == 1 {
				require.Equal(t, len(pkt), m, "a datagram that fits goes whole")
			} else {
				require.LessOrEqual(t, m, int(mtu), "fragment %d of %d", i, n)
			}
			if n <= maxFrags {
				d, ok = p.Input(0, b[:m])
			}
		}
		if n <= maxFrags {
			require.True(t, ok)
			require.Equal(t, []byte(pkt.Payload()), d.Payload)
		}
	})
}
