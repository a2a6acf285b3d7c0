package udp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// BenchmarkInputReadFrom is the receive path per datagram: checksum,
// demux, copy into the receive queue, and the read out of it.
func BenchmarkInputReadFrom(b *testing.B) {
	for _, size := range []int{64, 1472} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			tbl := newTable(b, Config{})
			e := bind(b, tbl, "0.0.0.0:7")
			seg := segment(from, to, make([]byte, size))
			buf := make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if tbl.Input(0, from.Addr(), to.Addr(), seg) != Delivered {
					b.Fatal("not delivered")
				}
				if _, _, err := e.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteToOutput is the send path per datagram: the write into the
// send queue, and the header, payload and checksum written into a TX
// buffer.
func BenchmarkWriteToOutput(b *testing.B) {
	for _, size := range []int{64, 1472} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			tbl := newTable(b, Config{})
			e := bind(b, tbl, "198.18.0.1:7")
			p := make([]byte, size)
			dst := netip.MustParseAddrPort("198.18.1.1:53")
			tx := make([]byte, 2048)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.WriteTo(p, dst); err != nil {
					b.Fatal(err)
				}
				tbl.Output(0, tx)
			}
		})
	}
}

// BenchmarkDemux is the lookup by local port among many bound ports, in a
// random order so that the port table is not all in cache.
func BenchmarkDemux(b *testing.B) {
	for _, bound := range []int{1, 1000, 16000} {
		b.Run(fmt.Sprint(bound), func(b *testing.B) {
			tbl := newTable(b, Config{})
			ports := make([]uint16, bound)
			for i := range ports {
				ports[i] = bind(b, tbl, "0.0.0.0:0").LocalAddr().Port()
			}
			rng := rand.New(rand.NewPCG(5, 6))
			order := make([]uint16, 4096)
			for i := range order {
				order[i] = ports[rng.IntN(bound)]
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if tbl.lookup(local1, order[i%len(order)], peer1, 53) == nil {
					b.Fatal("no endpoint")
				}
				i++
			}
		})
	}
}
