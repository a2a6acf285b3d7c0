package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

func TestPortUnreachable(t *testing.T) {
	for _, size := range []int{0, 1, 100, 520, 521, 1472} {
		l := newLayer(t)
		p := udpTo(9999, size)
		d, ok := l.Input(0, p)
		require.True(t, ok)
		out := make([]byte, 1500)
		n := l.Unreachable(0, d, wire.ICMPPortUnreachable, out)
		quote := min(len(p), 576-28)
		require.Equal(t, 28+quote, n, "payload %d: quotes up to 576 bytes in all", size)
		h := wire.IPv4(out[:n])
		require.NoError(t, h.Check())
		assert.True(t, h.ChecksumValid())
		assert.Equal(t, ours, h.Src())
		assert.Equal(t, peer, h.Dst())
		assert.EqualValues(t, wire.ProtoICMP, h.Protocol())
		assert.Zero(t, h.TOS())
		assert.False(t, h.DontFragment())
		m := wire.ICMP(h.Payload())
		assert.True(t, m.ChecksumValid())
		assert.EqualValues(t, wire.ICMPDestUnreachable, m.Type())
		assert.EqualValues(t, wire.ICMPPortUnreachable, m.Code())
		assert.Equal(t, []byte{0, 0, 0, 0}, []byte(m[4:8]), "unused word")
		assert.Equal(t, p[:quote], []byte(m.Payload()), "the offending datagram as received")
		s := l.Stats()
		assert.EqualValues(t, 1, s.ICMP.OutDestUnreachs)
		assert.EqualValues(t, 1, s.ICMP.OutMsgs)
		assert.EqualValues(t, 1, s.IP.OutRequests)
		checkInvariants(t, l)
	}
}

func TestProtocolUnreachable(t *testing.T) {
	l := newLayer(t)
	d, ok := l.Input(0, pk{src: peer, dst: ours, proto: 253, ttl: 1}.build())
	require.True(t, ok)
	out := make([]byte, 1500)
	n := l.Unreachable(0, d, wire.ICMPProtoUnreachable, out)
	require.Equal(t, 28+20, n, "an empty datagram: the header alone is quoted")
	m := wire.ICMP(wire.IPv4(out[:n]).Payload())
	assert.EqualValues(t, wire.ICMPProtoUnreachable, m.Code())
}

func TestNoErrorsWhereRFC1122Forbids(t *testing.T) {
	l := newLayer(t)
	out := make([]byte, 1500)
	unreachable := func(d Datagram) int { return l.Unreachable(0, d, wire.ICMPPortUnreachable, out) }

	udp := udpTo(1, 8)[20:]
	for _, dst := range []netip.Addr{subBc, allBc} {
		d, ok := l.Input(0, pk{src: peer, dst: dst, proto: wire.ProtoUDP, payload: udp}.build())
		require.True(t, ok)
		assert.Zero(t, unreachable(d), "to a broadcast %v", dst)
	}

	d, ok := l.Input(0, udpTo(1, 8))
	require.True(t, ok)
	d.LinkBroadcast = true
	assert.Zero(t, unreachable(d), "a link-layer broadcast")

	// ICMP errors, whatever their type; queries are answered.
	for _, typ := range []uint8{wire.ICMPDestUnreachable, icmpSourceQuench, icmpRedirect, wire.ICMPTimeExceeded, icmpParamProblem} {
		d, ok := l.Input(0, icmpError(typ, 0, 0, sent(t, l, far, 40)))
		require.True(t, ok)
		assert.Zero(t, unreachable(d), "an ICMP error of type %d", typ)
	}
	d, ok = l.Input(0, pk{src: peer, dst: ours, proto: wire.ProtoICMP, payload: []byte{8, 0, 0, 0}}.build())
	require.True(t, ok)
	assert.Zero(t, unreachable(d), "an ICMP message too short to tell")

	// A non-initial fragment: Input never delivers one, but a caller
	// could build a Datagram from one.
	f := pk{src: peer, dst: ours, proto: wire.ProtoUDP, off: 8, payload: pattern(8, 0)}.build()
	h := wire.IPv4(f)
	assert.Zero(t, unreachable(Datagram{Header: h, Src: peer, Dst: ours, Proto: wire.ProtoUDP, Payload: h.Payload()}), "a non-initial fragment")

	// Sources that name no single host: Input drops them, but a caller
	// could build a Datagram from one. Ours and 127/8 are the loopback
	// path's, which TestUnreachableLoopback covers.
	for _, src := range []string{"0.0.0.0", "224.0.0.5", "240.0.0.1", "255.255.255.255", "198.18.0.255"} {
		a := netip.MustParseAddr(src)
		h := wire.IPv4(pk{src: a, dst: ours, proto: wire.ProtoUDP, payload: udp}.build())
		assert.Zero(t, unreachable(Datagram{Header: h, Src: a, Dst: ours, Proto: wire.ProtoUDP, Payload: h.Payload()}), src)
	}

	s := l.Stats().ICMP
	assert.Zero(t, s.OutMsgs)
	assert.Zero(t, s.OutRateLimited, "forbidden errors take no token")

	d, ok = l.Input(0, echoRequest(ours, 1, 1, nil, 0))
	require.True(t, ok)
	assert.NotZero(t, unreachable(d), "an ICMP query may get an error")
}

func TestUnreachableShortBuffer(t *testing.T) {
	l := newLayer(t)
	d, ok := l.Input(0, udpTo(9, 100))
	require.True(t, ok)
	assert.Zero(t, l.Unreachable(0, d, wire.ICMPPortUnreachable, make([]byte, 28+20+7)))
	assert.EqualValues(t, 1, l.Stats().ICMP.OutErrors)
	n := l.Unreachable(0, d, wire.ICMPPortUnreachable, make([]byte, 28+20+8))
	assert.Equal(t, 28+28, n, "the header and 8 bytes are enough")
}

func TestUnreachableSmallMTU(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.MTU = 100 })
	d, ok := l.Input(0, udpTo(9, 60))
	require.True(t, ok)
	assert.Equal(t, 100, l.Unreachable(0, d, wire.ICMPPortUnreachable, make([]byte, 1500)), "the error fits the MTU")
}

func TestErrorRateLimitExact(t *testing.T) {
	l := newLayer(t)
	d, ok := l.Input(0, udpTo(9, 10))
	require.True(t, ok)
	out := make([]byte, 1500)
	calls := 0
	send := func(now time.Duration) bool {
		calls++
		return l.Unreachable(now, d, wire.ICMPPortUnreachable, out) > 0
	}

	t0 := 5 * time.Second // any epoch
	for i := range 50 {
		require.True(t, send(t0), "burst message %d", i)
	}
	assert.False(t, send(t0), "the burst of 50 is spent")
	assert.False(t, send(t0+time.Millisecond-1), "a token takes 1 ms")
	assert.True(t, send(t0+time.Millisecond))
	assert.False(t, send(t0+time.Millisecond))
	assert.True(t, send(t0+2500*time.Microsecond), "1.5 ms of credit: one token")
	assert.False(t, send(t0+2500*time.Microsecond))
	assert.True(t, send(t0+3*time.Millisecond), "the half token carried over")
	// A long pause refills to the burst, no more.
	t1 := t0 + time.Hour
	for i := range 50 {
		require.True(t, send(t1), "refilled burst message %d", i)
	}
	assert.False(t, send(t1))
	// A steady 1000/s goes through; 2000/s is halved.
	ok1, ok2 := 0, 0
	for i := range 1000 {
		if send(t1 + time.Duration(i+1)*time.Millisecond) {
			ok1++
		}
	}
	t2 := t1 + 2*time.Second
	send(t2) // take one from the 50 refilled, then drain the rest
	for send(t2) {
	}
	for i := range 2000 {
		if send(t2 + time.Duration(i+1)*500*time.Microsecond) {
			ok2++
		}
	}
	assert.Equal(t, 1000, ok1)
	assert.Equal(t, 1000, ok2)
	s := l.Stats().ICMP
	assert.EqualValues(t, calls, s.OutDestUnreachs+s.OutRateLimited, "every call sent or was limited")
}

func TestErrorRateConfigurable(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ICMPErrorRate = 10; c.ICMPErrorBurst = 2 })
	d, ok := l.Input(0, udpTo(9, 10))
	require.True(t, ok)
	out := make([]byte, 1500)
	got := 0
	for ms := range 1000 { // one a millisecond for a second
		if l.Unreachable(time.Duration(ms)*time.Millisecond, d, wire.ICMPPortUnreachable, out) > 0 {
			got++
		}
	}
	assert.Equal(t, 2+9, got, "the burst, then one per 100 ms")
}

func TestEchoRepliesNotRateLimited(t *testing.T) {
	l := newLayer(t)
	out := make([]byte, 1500)
	for i := range 500 {
		d, ok := l.Input(0, echoRequest(ours, 1, uint16(i), nil, 0))
		require.True(t, ok)
		n, _ := l.ICMPInput(0, d, out)
		require.NotZero(t, n, "reply %d", i)
	}
}

// TestUnreachableLoopback: a datagram from ourselves (the poller's
// loopback path: our address or 127/8 as source) to a closed port is
// answered, and without the rate limit, as Linux answers on lo; the error
// quoting 127.0.0.1 reads as ours on the loopback path, and as a forgery
// from the wire.
func TestUnreachableLoopback(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ICMPErrorRate = 1 })
	udp := make([]byte, 8)
	for _, src := range []netip.Addr{ours, LoopbackAddr, ours, LoopbackAddr} {
		h := wire.IPv4(pk{src: src, dst: ours, proto: wire.ProtoUDP, payload: udp}.build())
		out := make([]byte, 128)
		n := l.Unreachable(0, Datagram{Header: h, Src: src, Dst: ours, Proto: wire.ProtoUDP, Payload: h.Payload()},
			wire.ICMPPortUnreachable, out)
		require.NotZero(t, n, src)
		e := wire.IPv4(out[:n])
		assert.Equal(t, src, e.Dst())
		d := Datagram{Header: e, Src: e.Src(), Dst: e.Dst(), Proto: wire.ProtoICMP, Payload: e.Payload()}
		_, ev := l.ICMPInput(0, d, nil)
		assert.Equal(t, EventError, ev.Kind, src)
		assert.Equal(t, src, ev.Src)
		// The same error from a peer on the wire quoting 127.0.0.1 is refused.
		d.Src = peer
		_, ev = l.ICMPInput(0, d, nil)
		assert.Equal(t, src == ours, ev.Kind == EventError, "from the wire, quoting %v", src)
	}
	assert.Zero(t, l.Stats().ICMP.OutRateLimited)
}
