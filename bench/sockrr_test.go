package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkSockRR measures 1-byte TCP request/response through the
// public API, one request in flight over one connection, b.N times after
// echoWarmup more: trans/s and the p50, p99, p99.9 and mean round trip in
// µs, as the client measured them. Every client is a process of its own
// in the peer's namespace (in one process, Go's netpoller would let one
// thread carry the kernel's whole round trip without a wakeup); every
// server runs in this process on Local's end of one veth pair.
//
//   - xdpnet-xdpnet: the client opens an xdpnet stack of its own
//     (sockapi.Open on the peer's link, at peerStackAddr) and calls Write
//     and Read on a sockapi net.Conn; the server is a goroutine echoing a
//     sockapi net.Conn (port 2007). Against kernel: Go's net at both
//     ends, the client on the peer's kernel and the echo on Local's
//     kernel address (port 7), on the same veth pair (the peer has no XDP
//     program while the kernel runs: the client process's stack detaches
//     it when it ends).
//   - kernel-client: the same kernel client for every server: the kernel's
//     Go echo; xdpnet's goroutine echo on a sockapi listener; and
//     xdpnet's poller-side echo (port 7, the inline handler of `xdpnet
//     serve`).
//
// Both stacks' pollers run as xdpnet runs them by default: spinning for
// 200 µs after their last work, then parking. Nothing is pinned.
func BenchmarkSockRR(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	sockStack(b, l)
	kernelTCP(b, l.Local, echoPort, tcpEcho)
	rr := func(server netip.AddrPort, via string) func(b *testing.B) map[string]float64 {
		return func(b *testing.B) map[string]float64 { return sockClient(b, l, "rr", server, b.N, 1, via) }
	}
	kernel := rr(netip.AddrPortFrom(kernelAddr(l), echoPort), viaKernel)
	goroutine := netip.AddrPortFrom(l.StackAddr, sockEchoPort)
	ratios := []string{"trans/s", "p50-µs", "p99-µs"}
	b.Run("xdpnet-xdpnet", func(b *testing.B) {
		variants(b, ratios, kernel, []string{"xdpnet"}, rr(goroutine, viaXDPNet(l)))
	})
	b.Run("kernel-client", func(b *testing.B) {
		variants(b, ratios, kernel, []string{"goroutine", "inline"},
			rr(goroutine, viaKernel), rr(netip.AddrPortFrom(l.StackAddr, echoPort), viaKernel))
	})
}

// BenchmarkSockConnect measures new connections per second: a kernel
// client (Go's net, a process of its own in the peer's namespace)
// connects, sends 1 byte, reads its echo and closes, b.N times (at most
// connsMax), with 1 and with 64 such loops at once: conns/s, and the p50
// and p99 of one connection's whole life. The servers are goroutine
// echoes, one goroutine per connection: Go's net on Local's kernel
// address, and a sockapi listener on xdpnet's, on the same veth pair.
// The peer's namespace gets ports 1024–65535 and tcp_tw_reuse (see
// connsMax).
func BenchmarkSockConnect(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients-%d", par), func(b *testing.B) {
			l := lab.New(b, lab.Config{Mode: lab.Native})
			sockStack(b, l)
			kernelTCP(b, l.Local, echoPort, tcpEcho)
			l.Peer.Run(b, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1")
			crr := func(server netip.AddrPort) func(b *testing.B) map[string]float64 {
				return func(b *testing.B) map[string]float64 {
					return sockClient(b, l, "crr", server, min(b.N, connsMax), par, viaKernel)
				}
			}
			compare(b, []string{"conns/s"},
				crr(netip.AddrPortFrom(kernelAddr(l), echoPort)),
				crr(netip.AddrPortFrom(l.StackAddr, sockEchoPort)))
		})
	}
}
