package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkSockBulk measures TCP throughput through the public API, MTU
// 1500, over 1 and 4 connections at once, in each direction: a kernel
// client (Go's net, a process of its own in the peer's namespace) moves
// b.N MiB in all (at most bulkMax); Gbit/s from the first connect to the
// last byte, as the client measured it, and ns/op the time per MiB at
// that rate (perMiB).
//   - xdpnet-to-kernel: the client reads from chargen: xdpnet's goroutine
//     writing a 64 KiB buffer over and over into a sockapi net.Conn (port
//     2019), or the same Go function on a kernel net.Conn (port 19).
//   - kernel-to-xdpnet: the client writes to discard (2009 on xdpnet, 9
//     on the kernel), then its FIN, and waits for the server's FIN.
//
// Baselines, as in BenchmarkTCPBulk: kernel, Local's kernel address on
// the same veth pair (the peer's transmit checksum offload, and with it
// its TSO, off, as AF_XDP needs; Local's offloads on); and
// kernel-offloads-on, the kernel on a veth pair of its own with no XDP
// program and every offload on at both ends. The xdpnet line reports
// Gbit/s-x-kernel and Gbit/s-x-kernel-offloads-on.
//
// xdpnet-to-kernel also runs xdpnet-peer-gro: the same xdpnet sender on
// a lab whose peer receives as a host behind a NIC does (peerGROLab),
// reported against kernel-offloads-on.
func BenchmarkSockBulk(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	sockStack(b, l)
	on := kernelPair(b, true)
	gro := peerGROLab(b)
	sockStack(b, gro)
	for _, lb := range []*lab.Lab{l, on} {
		kernelTCP(b, lb.Local, chargenPort, tcpChargen)
		kernelTCP(b, lb.Local, discardPort, tcpDiscard)
	}
	for _, dir := range []struct {
		name, mode       string
		kernel, sockPort uint16
	}{
		{"xdpnet-to-kernel", "read", chargenPort, sockChargenPort},
		{"kernel-to-xdpnet", "write", discardPort, sockDiscardPort},
	} {
		for _, streams := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/streams-%d", dir.name, streams), func(b *testing.B) {
				run := func(b *testing.B, l *lab.Lab, server netip.AddrPort) map[string]float64 {
					return perMiB(b, func(n int) map[string]float64 {
						return sockClient(b, l, dir.mode, server, n, streams, viaKernel)
					})
				}
				var best map[string]float64
				b.Run("kernel-offloads-on", func(b *testing.B) {
					best = run(b, on, netip.AddrPortFrom(kernelAddr(on), dir.kernel))
				})
				versusBest := func(b *testing.B, m map[string]float64) {
					if k := best["Gbit/s"]; k > 0 {
						b.ReportMetric(m["Gbit/s"]/k, "Gbit/s-x-kernel-offloads-on")
					}
				}
				if dir.mode == "read" {
					b.Run("xdpnet-peer-gro", func(b *testing.B) {
						versusBest(b, run(b, gro, netip.AddrPortFrom(gro.StackAddr, dir.sockPort)))
					})
				}
				compare(b, []string{"Gbit/s"},
					func(b *testing.B) map[string]float64 {
						return run(b, l, netip.AddrPortFrom(kernelAddr(l), dir.kernel))
					},
					func(b *testing.B) map[string]float64 {
						m := run(b, l, netip.AddrPortFrom(l.StackAddr, dir.sockPort))
						versusBest(b, m)
						return m
					})
			})
		}
	}
}

// peerGROLab is a lab whose peer receives as a host behind a NIC does: in
// a NAPI thread of its own, through GRO. In the plain lab, veth runs the
// peer's whole IP and TCP receive of each frame xdpnet sends inside
// xdpnet's own sendto, one frame at a time, and wakes the reader for
// each. veth queues an AF_XDP frame for the peer's NAPI only when the
// sending end has TSO off (veth_skb_is_eligible_for_gro: such an skb has
// no sock_wfree destructor), so Local's TSO is off here; AF_XDP does not
// use it.
func peerGROLab(b *testing.B) *lab.Lab {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	l.Local.Run(b, "ethtool", "-K", l.Local.Link, "tso", "off")
	l.Peer.Run(b, "ethtool", "-K", l.Peer.Link, "gro", "on")
	napiThread(b, l.Peer)
	return l
}
