package udp

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// FuzzInput feeds arbitrary bytes from arbitrary addresses to a table with
// wildcard, specific, shared and connected endpoints and small queues, three
// times over so that the queues fill. Input must not panic, must account
// for every datagram in exactly one counter, and must keep every queue
// within its limits; a delivered payload must read back unchanged. With
// fixSum the checksum is made valid first, so that mutations reach demux.
func FuzzInput(f *testing.F) {
	peer := netip.MustParseAddrPort("198.18.1.1:53")
	add := func(src netip.AddrPort, dst netip.AddrPort, seg []byte, fixSum bool) {
		s, d := src.Addr().As4(), dst.Addr().As4()
		f.Add(binary.BigEndian.Uint32(s[:]), binary.BigEndian.Uint32(d[:]), seg, fixSum)
	}
	to7 := netip.MustParseAddrPort("198.18.0.2:7")
	to8 := netip.MustParseAddrPort("198.18.0.1:8")
	add(peer, to7, segment(peer, to7, []byte("hello")), false)
	add(peer, to8, segment(peer, to8, make([]byte, 40)), false)
	add(peer, to8, segment(peer, to8, make([]byte, 100)), true)
	noSum := segment(peer, to7, []byte("no checksum"))
	noSum[6], noSum[7] = 0, 0
	add(peer, to7, noSum, false)
	add(peer, to7, segment(peer, to7, nil)[:7], false)
	add(peer, to7, append(segment(peer, to7, []byte("pad")), 0, 0, 0), false)
	add(peer, netip.MustParseAddrPort("198.18.0.1:9"), segment(peer, to7, nil), false)

	f.Fuzz(func(t *testing.T, src, dst uint32, seg []byte, fixSum bool) {
		tbl, err := New(Config{
			Addrs:              []netip.Addr{local1, local2},
			RecvQueueBytes:     64,
			RecvQueueDatagrams: 2,
			Seed:               1,
		})
		require.NoError(t, err)
		var eps []*Endpoint
		for _, s := range []string{"0.0.0.0:7", "198.18.0.1:8", "0.0.0.0:8", "198.18.0.2:8"} {
			e, err := tbl.BindShared(netip.MustParseAddrPort(s))
			require.NoError(t, err)
			eps = append(eps, e)
		}
		require.NoError(t, eps[2].Connect(peer))

		srcA := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, src)))
		dstA := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, dst)))
		if u := wire.UDP(seg); fixSum && u.Check() == nil {
			seg = append([]byte(nil), seg...)
			wire.UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort()}.Encode(seg, u.Length()-wire.UDPHeaderLen, srcA, dstA)
		}
		buf := make([]byte, 128)
		for i := range 3 {
			before := tbl.Stats()
			res := tbl.Input(0, srcA, dstA, seg)
			after := tbl.Stats()
			counted := map[Result]uint64{
				Delivered: after.InDatagrams - before.InDatagrams,
				NoPort:    after.NoPorts - before.NoPorts,
				Dropped:   after.InErrors - before.InErrors,
			}
			for r, n := range counted {
				if r == res {
					require.Equal(t, uint64(1), n, "%v counted once", r)
				} else {
					require.Zero(t, n, "%v not counted for %v", r, res)
				}
			}
			for _, e := range eps {
				require.LessOrEqual(t, e.rcv.datagrams(), 2)
				require.LessOrEqual(t, e.rcv.bytes(), 64)
			}
			if i == 1 {
				for _, e := range eps {
					if n, from, err := e.ReadFrom(buf); err == nil {
						u := wire.UDP(seg)
						require.Equal(t, u.Payload()[:n], buf[:n])
						require.Equal(t, netip.AddrPortFrom(srcA, u.SrcPort()), from)
					}
				}
			}
		}
	})
}
