package main

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkTCPRR measures TCP request/response: a Go client on the peer (a
// kernel socket, net.TCPConn, TCP_NODELAY as Go sets it) sends 1 byte over
// one connection and waits for its echo, one in flight, b.N times;
// trans/s and the p50, p99, p99.9 and mean round trip in µs, as the client
// measured them.
//
// As in BenchmarkUDPEcho, both servers run in one lab on the same veth
// end, for the same client process in the peer's namespace:
//   - xdpnet: StackAddr:7, TCP echo from the poller's OnRound hook
//     (internal/product/services, as `xdpnet serve`), the poller run as xdpnet
//     runs it (spinning while segments come, parking after 200 µs idle).
//   - kernel: Local's kernel address:7, a Go echo server (net.TCPConn, a
//     goroutine per connection) whose segments pass the steering program
//     with XDP_PASS.
//
// Nothing is pinned. When the scheduler puts the client on the vCPU where
// the poller spins, the client runs only once the spin ends: such
// transactions take the spin and a wakeup, ~240 µs, and set the p99.
func BenchmarkTCPRR(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	newStack(b, l).run(b)
	kernelTCP(b, l.Local, echoPort, tcpEcho)
	compare(b, []string{"trans/s"},
		func(b *testing.B) map[string]float64 {
			return tcpClient(b, l, "rr", netip.AddrPortFrom(kernelAddr(l), echoPort), b.N)
		},
		func(b *testing.B) map[string]float64 {
			return tcpClient(b, l, "rr", netip.AddrPortFrom(l.StackAddr, echoPort), b.N)
		})
}

// kernelTCP runs a Go TCP server on h's kernel address and port, serving
// each connection on a goroutine of its own, until b ends. Every
// connection gets timeLimit: serve must return once its conn fails.
func kernelTCP(b *testing.B, h *lab.Host, port uint16, fn func(net.Conn)) {
	ln, err := listenKernel(h, port)
	require.NoError(b, err)
	serveTCP(b, ln, fn)
}

// serveTCP serves ln (see serve) until b ends.
func serveTCP(b *testing.B, ln net.Listener, fn func(net.Conn)) { b.Cleanup(serve(ln, fn)) }

// tcpClient runs the client in mode (rr, read or write: see clientSpec)
// over one connection to server, n transactions or bytes, in a process of
// its own in the peer's namespace, and reports what it measured.
func tcpClient(b *testing.B, l *lab.Lab, mode string, server netip.AddrPort, n int) map[string]float64 {
	return peerClient(b, l, clientSpec{Mode: mode, Server: server.String(), N: n, Via: viaKernel})
}
