package main

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkUDPEcho measures UDP request/response: a Go client on the peer
// (a kernel socket, net.UDPConn) sends a request of 64 or 1024 bytes and
// waits for its echo, one in flight, b.N times; trans/s and the p50, p99
// and mean round trip in µs, as the client measured them.
//
// Both servers run in one lab, on the same veth end, behind the same XDP
// steering program, for the same client:
//   - xdpnet: StackAddr:7, a poller with an echo endpoint, run as xdpnet
//     runs it (spinning while requests come, blocking after 200 µs idle).
//   - kernel: Local's kernel address:7, a Go echo server (net.UDPConn) on
//     its own goroutine. Its requests pass the steering program (XDP_PASS),
//     as the kernel's traffic does when xdpnet shares a NIC with it.
//
// The client is a process of its own (this test binary, re-executed in the
// peer's namespace), as a client on another host would be. In the servers'
// process the Go scheduler would short-cut the kernel's round trip: the
// client's thread, parking in its Read, would find the server's goroutine
// ready in the shared netpoller and run it itself, so no wakeup would ever
// cross threads (measured: 63k trans/s at p50 13 µs, against ~20k/s for
// the kernel when the client is a process of its own).
//
// Nothing is pinned: both answer as they would on an ordinary machine.
// Target (issue 3): xdpnet answers ≥ 1.2× the kernel's transactions/s.
func BenchmarkUDPEcho(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	newStack(b, l).run(b)
	kernelEcho(b, l)
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			compare(b, []string{"trans/s"},
				func(b *testing.B) map[string]float64 {
					return echoClient(b, l, netip.AddrPortFrom(kernelAddr(l), echoPort), size)
				},
				func(b *testing.B) map[string]float64 {
					return echoClient(b, l, netip.AddrPortFrom(l.StackAddr, echoPort), size)
				})
		})
	}
}

// echoClient runs b.N transactions of size bytes against server from a
// client process in the peer's namespace, and reports what it measured.
func echoClient(b *testing.B, l *lab.Lab, server netip.AddrPort, size int) map[string]float64 {
	return peerClient(b, l, clientSpec{Mode: "udprr", Server: server.String(), Size: size, N: b.N, Via: viaKernel})
}

// peerClient runs spec in a client process in the peer's namespace and
// reports the metrics it measured, timing only the client.
func peerClient(b *testing.B, l *lab.Lab, spec clientSpec) map[string]float64 {
	b.ResetTimer()
	m := peerRun(b, l, spec)
	b.StopTimer()
	b.ReportMetric(0, "ns/op") // the wall time includes the client's start
	return report(b, m)
}

// peerRun runs spec as peerClient does, and returns the metrics it
// measured, leaving b's timer and metrics alone.
func peerRun(b *testing.B, l *lab.Lab, spec clientSpec) map[string]float64 {
	r, err := runClient(context.Background(), l, spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r.metrics
}
