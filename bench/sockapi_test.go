package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// Shared by the benchmarks of the public API (BenchmarkSockRR,
// BenchmarkSockBulk, BenchmarkSockConnect, BenchmarkSockIdle): xdpnet as
// an application gets it, sockapi.Open with goroutines serving
// net.Conns, against the kernel with Go's net on the same veth pair.

// sockStack opens xdpnet through its public API on Local's link
// (openSock), closed when b ends.
func sockStack(b *testing.B, l *lab.Lab) *sockapi.Stack {
	s, _, stop, err := openSock(l)
	require.NoError(b, err)
	b.Cleanup(func() {
		if err := stop(); err != nil {
			b.Errorf("stack: %v", err)
		}
	})
	return s
}

// sockClient runs the client in mode (see clientSpec) against server
// with n and par, on the stack via says, in a process of its own in the
// peer's namespace, and reports what it measured.
func sockClient(b *testing.B, l *lab.Lab, mode string, server netip.AddrPort, n, par int, via string) map[string]float64 {
	return peerClient(b, l, clientSpec{Mode: mode, Server: server.String(), N: n, Par: par, Via: via})
}

// variants runs the kernel's side, then each of xdpnet's, as
// sub-benchmarks of b on the same lab, as compare does for one; each of
// xdpnet's lines reports the named metrics as ratios to the kernel's
// ("<name>-x-kernel").
func variants(b *testing.B, ratios []string, kernel func(b *testing.B) map[string]float64, names []string, xdpnet ...func(b *testing.B) map[string]float64) {
	var k map[string]float64
	b.Run("kernel", func(b *testing.B) { k = kernel(b) })
	for i, name := range names {
		b.Run(name, func(b *testing.B) {
			x := xdpnet[i](b)
			for _, r := range ratios {
				if k[r] > 0 {
					b.ReportMetric(x[r]/k[r], r+"-x-kernel")
				}
			}
		})
	}
}
