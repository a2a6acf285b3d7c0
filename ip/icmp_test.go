package ip

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// echoRequest builds an echo request from peer to dst.
func echoRequest(dst netip.Addr, id, seq uint16, data []byte, tos uint8) []byte {
	msg := icmpMsg(wire.ICMPEcho, 0, uint32(id)<<16|uint32(seq), data)
	return pk{src: peer, dst: dst, proto: wire.ProtoICMP, ttl: 64, tos: tos, id: 77, payload: msg}.build()
}

func TestEchoReplyByteExact(t *testing.T) {
	l := newLayer(t)
	reply := make([]byte, 1500)
	for size := 0; size <= 1472; size++ {
		data := pattern(size, byte(size))
		req := echoRequest(ours, 0xbeef, uint16(size), data, 0x10)
		d, ok := l.Input(0, req)
		require.True(t, ok)
		n, ev := l.ICMPInput(0, d, reply)
		require.Equal(t, 28+size, n, "payload %d", size)
		assert.Equal(t, EventNone, ev.Kind)

		h := wire.IPv4(reply[:n])
		require.NoError(t, h.Check())
		require.True(t, h.ChecksumValid())
		require.Equal(t, 0x45, int(h[0]))
		require.EqualValues(t, 0x10, h.TOS(), "RFC 1349: the request's TOS")
		require.Equal(t, n, h.TotalLen())
		require.False(t, h.DontFragment())
		require.False(t, h.IsFragment())
		require.EqualValues(t, 64, h.TTL())
		require.EqualValues(t, wire.ProtoICMP, h.Protocol())
		require.Equal(t, ours, h.Src(), "src and dst swapped")
		require.Equal(t, peer, h.Dst())
		m := wire.ICMP(h.Payload())
		require.True(t, m.ChecksumValid())
		require.EqualValues(t, wire.ICMPEchoReply, m.Type())
		require.Zero(t, m.Code())
		require.EqualValues(t, 0xbeef, m.ID())
		require.EqualValues(t, size, m.Seq())
		require.Equal(t, data, []byte(m.Payload()))
		// The ICMP part is the request's with type 0 and the checksum
		// adjusted by 0x0800 (RFC 1624).
		want := append([]byte{}, req[20:]...)
		want[0] = 0
		binary.BigEndian.PutUint16(want[2:], wire.UpdateChecksum16(binary.BigEndian.Uint16(want[2:]), 0x0800, 0))
		require.Equal(t, want, []byte(m))
	}
	s := l.Stats()
	assert.EqualValues(t, 1473, s.ICMP.InEchos)
	assert.EqualValues(t, 1473, s.ICMP.OutEchoReps)
	assert.EqualValues(t, 1473, s.ICMP.OutMsgs)
	assert.EqualValues(t, 1473, s.IP.OutRequests)
	checkInvariants(t, l)
}

func TestEchoReplyInPlace(t *testing.T) {
	l := newLayer(t)
	req := echoRequest(ours, 1, 2, pattern(100, 0), 0)
	frame := append([]byte{}, req...)
	d, ok := l.Input(0, frame)
	require.True(t, ok)
	n, _ := l.ICMPInput(0, d, frame) // the reply overwrites the request
	require.Equal(t, len(req), n)
	h := wire.IPv4(frame[:n])
	assert.True(t, h.ChecksumValid())
	assert.Equal(t, peer, h.Dst())
	m := wire.ICMP(h.Payload())
	assert.True(t, m.ChecksumValid())
	assert.EqualValues(t, 1, m.ID())
	assert.EqualValues(t, 2, m.Seq())
	assert.Equal(t, pattern(100, 0), []byte(m.Payload()))
}

func TestEchoReplyWithOptionsInRequest(t *testing.T) {
	l := newLayer(t)
	req := pk{src: peer, dst: ours, proto: wire.ProtoICMP, opts: []byte{1, 1, 1, 1}, payload: icmpMsg(wire.ICMPEcho, 0, 5, pattern(9, 0))}.build()
	d, ok := l.Input(0, req)
	require.True(t, ok)
	reply := make([]byte, 100)
	n, _ := l.ICMPInput(0, d, reply)
	require.Equal(t, 20+8+9, n, "the reply carries no options")
	assert.Equal(t, pattern(9, 0), []byte(wire.ICMP(wire.IPv4(reply[:n]).Payload()).Payload()))
}

func TestEchoReplyOfReassembledRequest(t *testing.T) {
	l := newLayer(t)
	// A 3000-byte echo request in fragments: RFC 1122 3.2.2.6 wants the
	// reply to carry all its data, so it is answered in the reassembly
	// buffer, in place, at full length, for the caller to fragment.
	data := pattern(2992, 0)
	d, ok := feed(t, l, 0, splitAs(3, wire.ProtoICMP, icmpMsg(wire.ICMPEcho, 0, 0x00010002, data), 1480)...)
	require.True(t, ok)
	n, _ := l.ICMPInput(0, d, d.Header)
	require.Equal(t, 3020, n)
	h := wire.IPv4(d.Header[:n])
	require.NoError(t, h.Check())
	assert.True(t, h.ChecksumValid())
	assert.False(t, h.DontFragment(), "an echo reply may be fragmented")
	assert.False(t, h.IsFragment())
	assert.Equal(t, peer, h.Dst())
	m := wire.ICMP(h.Payload())
	assert.True(t, m.ChecksumValid())
	assert.EqualValues(t, wire.ICMPEchoReply, m.Type())
	assert.EqualValues(t, 2, m.Seq())
	assert.Equal(t, data, []byte(m.Payload()))
	assert.Equal(t, 3, Fragments(h, 1500))

	// A reply buffer too short for the reply is an output error.
	d, ok = l.Input(0, echoRequest(ours, 1, 1, pattern(64, 0), 0))
	require.True(t, ok)
	n, _ = l.ICMPInput(0, d, make([]byte, 91))
	assert.Zero(t, n)
	assert.EqualValues(t, 1, l.Stats().ICMP.OutErrors)
}

func TestEchoToBroadcastIgnored(t *testing.T) {
	l := newLayer(t)
	for _, dst := range []netip.Addr{subBc, allBc} {
		d, ok := l.Input(0, echoRequest(dst, 1, 1, nil, 0))
		require.True(t, ok)
		require.True(t, d.Broadcast)
		n, ev := l.ICMPInput(0, d, make([]byte, 1500))
		assert.Zero(t, n, "RFC 1122 3.2.2.6: MAY be silently discarded")
		assert.Equal(t, EventNone, ev.Kind)
	}
	s := l.Stats().ICMP
	assert.EqualValues(t, 2, s.InEchos)
	assert.EqualValues(t, 2, s.InErrors)
	assert.Zero(t, s.OutMsgs)
}

func TestICMPInputBadMessages(t *testing.T) {
	l := newLayer(t)
	short := pk{src: peer, dst: ours, proto: wire.ProtoICMP, payload: []byte{8, 0, 0xf7, 0xff, 0, 0, 0}}.build()
	d, ok := l.Input(0, short)
	require.True(t, ok)
	n, _ := l.ICMPInput(0, d, make([]byte, 1500))
	assert.Zero(t, n)

	bad := echoRequest(ours, 1, 1, pattern(10, 0), 0)
	bad[len(bad)-1] ^= 0x40
	d, ok = l.Input(0, bad)
	require.True(t, ok)
	n, _ = l.ICMPInput(0, d, make([]byte, 1500))
	assert.Zero(t, n)

	s := l.Stats().ICMP
	assert.EqualValues(t, 2, s.InMsgs)
	assert.EqualValues(t, 2, s.InErrors)
	assert.EqualValues(t, 1, s.InCsumErrors)
	assert.Zero(t, s.InEchos, "types are counted once the message is valid")
	checkInvariants(t, l)
}

func TestEchoReplyEvent(t *testing.T) {
	l := newLayer(t)
	msg := icmpMsg(wire.ICMPEchoReply, 0, 0x00070009, []byte("pong"))
	d, ok := l.Input(0, pk{src: peer, dst: ours, proto: wire.ProtoICMP, payload: msg}.build())
	require.True(t, ok)
	n, ev := l.ICMPInput(0, d, nil)
	assert.Zero(t, n)
	assert.Equal(t, EventEchoReply, ev.Kind)
	assert.EqualValues(t, 7, ev.ID)
	assert.EqualValues(t, 9, ev.Seq)
	assert.Equal(t, []byte("pong"), ev.Data)
	assert.EqualValues(t, 1, l.Stats().ICMP.InEchoReps)
}

func TestErrorsBecomeEvents(t *testing.T) {
	l := newLayer(t)
	q := sent(t, l, far, 100)
	for _, c := range []struct{ typ, code uint8 }{
		{wire.ICMPDestUnreachable, wire.ICMPPortUnreachable},
		{wire.ICMPDestUnreachable, wire.ICMPHostUnreachable},
		{wire.ICMPTimeExceeded, 0},
		{icmpParamProblem, 0},
	} {
		d, ok := l.Input(0, icmpError(c.typ, c.code, 0, q))
		require.True(t, ok)
		n, ev := l.ICMPInput(0, d, nil)
		assert.Zero(t, n)
		assert.Equal(t, EventError, ev.Kind)
		assert.Equal(t, c.typ, ev.Type)
		assert.Equal(t, c.code, ev.Code)
		assert.EqualValues(t, wire.ProtoUDP, ev.Proto)
		assert.Equal(t, ours, ev.Src)
		assert.Equal(t, far, ev.Dst)
		assert.EqualValues(t, 4000, ev.SrcPort)
		assert.EqualValues(t, 53, ev.DstPort)
		assert.Equal(t, q[20:28], ev.Transport)
		assert.Zero(t, ev.MTU)
	}
	s := l.Stats().ICMP
	assert.EqualValues(t, 2, s.InDestUnreachs)
	assert.EqualValues(t, 1, s.InTimeExcds)
	assert.EqualValues(t, 1, s.InParmProbs)
	assert.Equal(t, 1500, l.PathMTU(0, far), "only fragmentation needed touches the path MTU")
}

func TestErrorsWithBadQuotesIgnored(t *testing.T) {
	l := newLayer(t)
	good := sent(t, l, far, 100)
	notOurs := append([]byte{}, good...)
	copy(notOurs[12:16], []byte{198, 18, 0, 9})
	fragment := append([]byte{}, good...)
	fragment[7] = 1 // offset 8
	v6 := append([]byte{}, good...)
	v6[0] = 0x65
	ihl4 := append([]byte{}, good...)
	ihl4[0] = 0x44
	for name, q := range map[string][]byte{
		"short quote":      good[:27],
		"not from us":      notOurs,
		"a fragment":       fragment,
		"not IPv4":         v6,
		"header too short": ihl4,
	} {
		m := icmpMsg(wire.ICMPDestUnreachable, wire.ICMPFragNeeded, 600, q[:min(len(q), 28)])
		d, ok := l.Input(0, pk{src: gateway, dst: ours, proto: wire.ProtoICMP, payload: m}.build())
		require.True(t, ok)
		before := l.Stats().ICMP.InErrors
		_, ev := l.ICMPInput(0, d, nil)
		assert.Equal(t, EventNone, ev.Kind, name)
		assert.Equal(t, before+1, l.Stats().ICMP.InErrors, name)
	}
	assert.Equal(t, 1500, l.PathMTU(0, far), "no bogus quote moved the path MTU")
}

func TestUnhandledTypesCountedOnly(t *testing.T) {
	l := newLayer(t)
	for _, typ := range []uint8{icmpSourceQuench, icmpRedirect, 13, 42} {
		d, ok := l.Input(0, pk{src: gateway, dst: ours, proto: wire.ProtoICMP, payload: icmpMsg(typ, 0, 0, make([]byte, 28))}.build())
		require.True(t, ok)
		n, ev := l.ICMPInput(0, d, make([]byte, 1500))
		assert.Zero(t, n)
		assert.Equal(t, EventNone, ev.Kind)
		assert.Equal(t, typ, ev.Type)
	}
	s := l.Stats().ICMP
	assert.EqualValues(t, 1, s.InSrcQuenchs)
	assert.EqualValues(t, 1, s.InRedirects)
	assert.EqualValues(t, 1, s.InType[42])
	assert.Zero(t, s.InErrors)
}

func TestTimeExceededNotSentForBroadcastFragments(t *testing.T) {
	l := newLayer(t)
	_, ok := l.Input(0, pk{src: peer, dst: subBc, proto: wire.ProtoUDP, id: 1, mf: true, payload: pattern(8, 0)}.build())
	require.False(t, ok)
	assert.Zero(t, tick(l, time.Minute, make([]byte, 1500)))
	assert.EqualValues(t, 1, l.Stats().IP.ReasmTimeout)
	assert.Zero(t, l.Stats().ICMP.OutMsgs)
}
