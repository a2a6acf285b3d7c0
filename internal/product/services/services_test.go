package services

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/udp"
)

func TestEchoDiscard(t *testing.T) {
	us, peer := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	tbl, err := udp.New(udp.Config{Addrs: []netip.Addr{us}})
	require.NoError(t, err)
	var s EchoDiscard
	require.NoError(t, s.Bind(tbl))
	assert.ErrorContains(t, new(EchoDiscard).Bind(tbl), "bind UDP echo", "the ports are taken once")

	datagram := func(port uint16, payload string) []byte {
		b := make([]byte, wire.UDPHeaderLen+len(payload))
		copy(b[wire.UDPHeaderLen:], payload)
		wire.UDPFields{SrcPort: 5555, DstPort: port}.Encode(b, len(payload), peer, us)
		return b
	}
	require.Equal(t, udp.Delivered, tbl.Input(peer, us, datagram(EchoPort, "hello")))
	require.Equal(t, udp.Delivered, tbl.Input(peer, us, datagram(DiscardPort, "gone")))
	require.Equal(t, udp.Delivered, tbl.Input(peer, us, datagram(DiscardPort, "gone too")))
	s.Serve(0)

	out, ok := tbl.NextOutput()
	require.True(t, ok, "the echo is queued")
	assert.Equal(t, netip.AddrPortFrom(peer, 5555), out.Dst)
	assert.Equal(t, EchoPort, int(out.Src.Port()))
	b := make([]byte, 64)
	n := tbl.EmitOutput(b, us)
	assert.Equal(t, "hello", string(wire.UDP(b[:n]).Payload()))
	_, ok = tbl.NextOutput()
	assert.False(t, ok, "discard sends nothing")
	assert.EqualValues(t, 2, s.Discarded())
}
