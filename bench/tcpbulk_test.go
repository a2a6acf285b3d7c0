package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// bulkMax bounds a bulk benchmark's bytes per run (-benchtime 100000x
// would ask 100 GB): 4 GiB takes 1.4 s at 25 Gbit/s, 34 s at 1.
const bulkMax = 4 << 30

// perMiB runs one bulk transfer of b.N MiB through move (an op is a MiB
// moved), at most bulkMax (Go's scaling of b.N passes it at 25 Gbit/s),
// and makes ns/op the time per MiB at the rate the client measured from
// its connect on: true of the run whether or not it was cut, unlike the
// wall time of the whole run, which includes starting the client's
// process.
func perMiB(b *testing.B, move func(n int) map[string]float64) map[string]float64 {
	m := move(min(b.N, bulkMax>>20) << 20)
	if g := m["Gbit/s"]; g > 0 {
		b.ReportMetric(8<<20/g, "ns/op") // Gbit/s is bits per ns
	}
	return m
}

// BenchmarkTCPBulk measures one TCP stream's throughput, MTU 1500, in
// each direction: a Go client on the peer (a kernel socket, in a process
// of its own) moves b.N MiB (at most bulkMax) over one connection; Gbit/s
// from the connect to the last byte, as the client measured it, and
// ns/op the time per MiB at that rate (perMiB).
//   - xdpnet-to-kernel: the client reads from chargen (port 19): xdpnet's
//     (internal/product/services), or a Go server on the kernel's address writing
//     a 64 KiB buffer over and over.
//   - kernel-to-xdpnet: the client writes to discard (port 9), then its
//     FIN, and waits for the server's FIN, sent once all is read.
//
// Four servers, each on the Local end of a veth pair, for the same client:
//   - xdpnet: StackAddr, on the poller's OnRound hook, as `xdpnet serve`.
//     It sends and receives 1500-byte frames and computes every checksum.
//   - kernel: Local's kernel address on the same veth pair. The lab turns
//     the peer's transmit checksum offload off (AF_XDP needs finished
//     checksums), and with it the peer's TSO: the peer sends 1500-byte
//     frames. Local keeps its offloads, so in xdpnet-to-kernel the
//     kernel sends 64 KiB super-frames, which veth hands over whole.
//   - kernel-offloads-on: the kernel on a veth pair of its own (a second
//     lab), with no XDP program and every offload on at both ends, as veth
//     comes: the kernel at its best.
//   - kernel-offloads-off: the same with transmit checksum offload, TSO
//     and GSO off at both ends: 1500-byte frames and software checksums
//     both ways, the work xdpnet does.
//
// The xdpnet line reports its ratio to each (Gbit/s-x-kernel,
// Gbit/s-x-kernel-offloads-on, Gbit/s-x-kernel-offloads-off).
func BenchmarkTCPBulk(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	newStack(b, l).run(b)
	on, off := kernelPair(b, true), kernelPair(b, false)
	for _, lb := range []*lab.Lab{l, on, off} {
		kernelTCP(b, lb.Local, chargenPort, tcpChargen)
		kernelTCP(b, lb.Local, discardPort, tcpDiscard)
	}
	for _, dir := range []struct {
		name, mode string
		port       uint16
	}{
		{"xdpnet-to-kernel", "read", chargenPort},
		{"kernel-to-xdpnet", "write", discardPort},
	} {
		b.Run(dir.name, func(b *testing.B) {
			run := func(b *testing.B, l *lab.Lab, server netip.Addr) map[string]float64 {
				return perMiB(b, func(n int) map[string]float64 {
					return tcpClient(b, l, dir.mode, netip.AddrPortFrom(server, dir.port), n)
				})
			}
			var offloads [2]map[string]float64
			b.Run("kernel-offloads-on", func(b *testing.B) { offloads[0] = run(b, on, kernelAddr(on)) })
			b.Run("kernel-offloads-off", func(b *testing.B) { offloads[1] = run(b, off, kernelAddr(off)) })
			compare(b, []string{"Gbit/s"},
				func(b *testing.B) map[string]float64 { return run(b, l, kernelAddr(l)) },
				func(b *testing.B) map[string]float64 {
					m := run(b, l, l.StackAddr)
					for i, name := range []string{"on", "off"} {
						if k := offloads[i]["Gbit/s"]; k > 0 {
							b.ReportMetric(m["Gbit/s"]/k, "Gbit/s-x-kernel-offloads-"+name)
						}
					}
					return m
				})
		})
	}
}

// kernelPair is a lab for the kernel alone: no XDP program, with veth's
// offloads all on at both ends, or transmit checksum offload, TSO and GSO
// all off.
func kernelPair(b *testing.B, offloads bool) *lab.Lab {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	state := map[bool]string{true: "on", false: "off"}[offloads]
	for _, h := range []*lab.Host{l.Local, l.Peer} {
		h.Run(b, "ethtool", "-K", h.Link, "tx", state, "tso", state, "gso", state)
		f := h.Run(b, "ethtool", "-k", h.Link)
		for _, feature := range []string{"tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"} {
			if !strings.Contains(f, feature+": "+state) {
				b.Fatalf("%s: want %s %s:\n%s", h.Link, feature, state, f)
			}
		}
	}
	return l
}
