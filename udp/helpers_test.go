package udp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// Addresses of the tests: two of ours and a peer (RFC 2544's
// benchmarking range, as the lab uses).
var (
	local1 = netip.MustParseAddr("198.18.0.1")
	local2 = netip.MustParseAddr("198.18.0.2")
	peer1  = netip.MustParseAddr("198.18.1.1")
)

// newTable returns a table with local1 and local2 and cfg's other fields.
func newTable(t testing.TB, cfg Config) *Table {
	t.Helper()
	cfg.Addrs = []netip.Addr{local1, local2}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	tbl, err := New(cfg)
	require.NoError(t, err)
	return tbl
}

// bind binds local, failing the test on error.
func bind(t testing.TB, tbl *Table, local string) *Endpoint {
	t.Helper()
	e, err := tbl.Bind(netip.MustParseAddrPort(local))
	require.NoError(t, err)
	return e
}

// segment builds a UDP datagram from src to dst with a valid checksum.
func segment(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, wire.UDPHeaderLen+len(payload))
	copy(b[wire.UDPHeaderLen:], payload)
	wire.UDPFields{SrcPort: src.Port(), DstPort: dst.Port()}.Encode(b, len(payload), src.Addr(), dst.Addr())
	return b
}

// deliver passes a datagram from src to dst through Input.
func deliver(tbl *Table, src, dst string, payload []byte) Result {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	return tbl.Input(0, s.Addr(), d.Addr(), segment(s, d, payload))
}

// read reads one datagram, failing the test on error.
func read(t testing.TB, e *Endpoint) (string, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	n, src, err := e.ReadFrom(buf)
	require.NoError(t, err)
	return string(buf[:n]), src
}

// emit takes the next datagram from the table's output and checks its
// description, header and checksum, over src as the source.
func emit(t testing.TB, tbl *Table, src netip.Addr) (wire.Out, wire.UDP) {
	t.Helper()
	b := make([]byte, 65536)
	out, ok := tbl.Output(0, b)
	require.True(t, ok, "a datagram to send")
	require.LessOrEqual(t, out.Len, len(b))
	require.Equal(t, uint8(wire.ProtoUDP), out.Proto)
	u := wire.UDP(b[:out.Len])
	require.NoError(t, u.Check())
	require.Equal(t, out.Len, u.Length())
	require.NotZero(t, u.Checksum(), "checksum always on (RFC 1122 4.1.3.4)")
	require.Zero(t, wire.Checksum(u, wire.PseudoHeaderSum(src, out.Dst, wire.ProtoUDP, out.Len)),
		"checksum verifies over the pseudo-header")
	return out, u
}

// nothingOut asserts that the table has no datagram to send.
func nothingOut(t testing.TB, tbl *Table, msg string) {
	t.Helper()
	_, ok := tbl.Output(0, make([]byte, 65536))
	require.False(t, ok, msg)
}

// appOwner stands for an app layer that owns an endpoint.
type appOwner struct{}

func (appOwner) Notify() bool { return false }
