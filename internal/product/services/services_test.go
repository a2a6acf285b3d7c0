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
	require.Equal(t, udp.Delivered, tbl.Input(0, peer, us, datagram(EchoPort, "hello")))
	require.Equal(t, udp.Delivered, tbl.Input(0, peer, us, datagram(DiscardPort, "gone")))
	require.Equal(t, udp.Delivered, tbl.Input(0, peer, us, datagram(DiscardPort, "gone too")))
	s.Serve(0)

	b := make([]byte, 64)
	out, ok := tbl.Output(0, b)
	require.True(t, ok, "the echo is queued")
	u := wire.UDP(b[:out.Len])
	assert.Equal(t, netip.AddrPortFrom(peer, 5555), netip.AddrPortFrom(out.Dst, u.DstPort()))
	assert.Equal(t, EchoPort, int(u.SrcPort()))
	assert.Equal(t, "hello", string(u.Payload()))
	_, ok = tbl.Output(0, b)
	assert.False(t, ok, "discard sends nothing")
	assert.EqualValues(t, 2, s.Discarded())
}
