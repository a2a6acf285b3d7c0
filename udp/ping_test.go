package udp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// echo builds an ICMP echo message of type typ with a valid checksum.
func echo(typ uint8, id, seq uint16, data string) []byte {
	m := make([]byte, wire.ICMPHeaderLen+len(data))
	m[0] = typ
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], wire.Checksum(m, 0))
	return m
}

// The stack overwrites the app's identifier with the endpoint's and
// recomputes the checksum; the reply with that identifier, and only it,
// reaches the endpoint, whole.
func TestPingIdentifierAndReplies(t *testing.T) {
	tbl := newTable(t, Config{Ping: true})
	a, b := bind(t, tbl, "0.0.0.0:0"), bind(t, tbl, "0.0.0.0:0")
	require.NotEqual(t, a.LocalAddr().Port(), b.LocalAddr().Port())
	id := a.LocalAddr().Port()

	req := echo(wire.ICMPEcho, id^0xffff, 7, "hello")
	_, err := a.WriteTo(req, netip.AddrPortFrom(peer1, 0))
	require.NoError(t, err)
	buf := make([]byte, 1500)
	out, ok := tbl.Output(0, buf)
	require.True(t, ok)
	require.Equal(t, wire.Out{Len: len(req), Dst: peer1, Proto: wire.ProtoICMP, Src: local1.As4()}, out)
	m := wire.ICMP(buf[:out.Len])
	require.True(t, m.ChecksumValid())
	require.Equal(t, id, m.ID())
	require.Equal(t, uint16(7), m.Seq())
	require.Equal(t, "hello", string(m.Payload()))

	reply := echo(wire.ICMPEchoReply, id, 7, "hello")
	require.Equal(t, NoPort, tbl.EchoReply(peer1, local1, echo(wire.ICMPEchoReply, id^0x8000, 7, "x")))
	require.Equal(t, Delivered, tbl.EchoReply(peer1, local1, reply))
	n, src, err := a.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, reply, buf[:n])
	require.Equal(t, peer1, src.Addr())
	_, _, err = b.ReadFrom(buf)
	require.ErrorIs(t, err, ErrWouldBlock)
}

// Only echo requests go out, as Linux's ping sockets allow; only echo
// replies come in; and a UDP table takes none.
func TestPingRefusesOtherMessages(t *testing.T) {
	tbl := newTable(t, Config{Ping: true})
	e := bind(t, tbl, "0.0.0.0:0")
	dst := netip.AddrPortFrom(peer1, 0)
	for _, m := range [][]byte{echo(wire.ICMPEchoReply, 1, 1, ""), echo(wire.ICMPEcho, 1, 1, "")[:7], {wire.ICMPEcho, 1, 0, 0, 0, 0, 0, 0}} {
		_, err := e.WriteTo(m, dst)
		require.ErrorIs(t, err, ErrNotEcho)
		require.ErrorIs(t, e.Stream().Send(m, dst), ErrNotEcho)
	}
	id := e.LocalAddr().Port()
	require.Equal(t, Dropped, tbl.EchoReply(peer1, local1, echo(wire.ICMPEcho, id, 1, "")))
	require.Equal(t, Dropped, tbl.EchoReply(peer1, local1, []byte{0, 0, 0}))
	plain := newTable(t, Config{})
	require.Equal(t, Dropped, plain.EchoReply(peer1, local1, echo(wire.ICMPEchoReply, id, 1, "")))
}
