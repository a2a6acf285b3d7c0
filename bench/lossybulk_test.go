package main

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// lossyRates are BenchmarkLossyBulk's random loss rates, each way.
var lossyRates = []float64{0, 0.001, 0.01, 0.03}

// Bounds of BenchmarkLossyBulk: a sample moves at most lossyBytes in at
// most lossyTime, and each system gives lossyRounds samples per loss rate
// (so 4 rates x 3 systems x 3 rounds take at most ~2 minutes).
const (
	lossyBytes  = 64 << 20
	lossyRounds = 3
)

// lossyCCs are the kernel's congestion controls BenchmarkLossyBulk
// compares with, and the ports of the kernel's chargen running each.
var lossyCCs = []struct {
	name string
	port uint16
}{{"cubic", 2119}, {"bbr", 2219}}

// BenchmarkLossyBulk measures one TCP stream's throughput through random
// loss, xdpnet sending through its public API against the Linux kernel
// sending on the same veth pair, MTU 1500. A kernel client in the peer's
// namespace (Go's net, a process of its own) reads from chargen for at
// most lossyBytes and lossyTime, checking every byte (a benchmark fails
// on corruption, never on a slow figure); MB/s from the connection's
// establishment to the last byte. The servers, on the Local end:
//   - xdpnet: a sockapi listener (port 2019) writing a 64 KiB buffer over
//     and over into each net.Conn, with xdpnet's default congestion
//     control (CUBIC);
//   - kernel-cubic and kernel-bbr: the same Go function on kernel sockets
//     of Local's address, each connection set to that congestion control
//     (TCP_CONGESTION). Local's TSO and GSO are off, so that the kernel
//     sends 1500-byte frames as xdpnet does: with them on, a lost skb
//     would be a 64 KiB burst of segments, and 1 % of skbs far fewer
//     than 1 % of segments.
//
// The loss: iptables statistic in the peer's namespace on INPUT (the
// data, lost on the wire as the sender sees it) and OUTPUT (the client's
// ACKs: an ACK its netfilter drops is not sent again) of every TCP
// segment, the same for all three servers. For each rate the systems
// take turns, lossyRounds times (the first in each round rotates); the
// line reports each one's median, MB/s-xdpnet, MB/s-kernel-cubic and
// MB/s-kernel-bbr, and xdpnet's ratios to the kernel's medians,
// MB/s-x-kernel-cubic and MB/s-x-kernel-bbr. The log gives each sample
// and the share of the data frames the peer dropped for each system.
func BenchmarkLossyBulk(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	l.Local.Run(b, "ethtool", "-K", l.Local.Link, "tso", "off", "gso", "off")
	sockStack(b, l)
	for _, cc := range lossyCCs {
		kernelTCP(b, l.Local, cc.port, func(c net.Conn) {
			if err := lab.SetCongestionControl(c.(syscall.Conn), cc.name); err != nil {
				b.Error(err)
				return
			}
			tcpChargen(c)
		})
	}
	type system struct {
		name   string
		server netip.AddrPort
	}
	systems := []system{{"xdpnet", netip.AddrPortFrom(l.StackAddr, sockChargenPort)}}
	for _, cc := range lossyCCs {
		systems = append(systems, system{"kernel-" + cc.name, netip.AddrPortFrom(kernelAddr(l), cc.port)})
	}
	for _, p := range lossyRates {
		b.Run(fmt.Sprintf("loss-%g%%", p*100), func(b *testing.B) {
			if p > 0 {
				for _, chain := range []string{"INPUT", "OUTPUT"} {
					l.Peer.RandomDrop(b, chain, p, "-p", "tcp")
				}
			}
			mbs := map[string][]float64{}
			frames, drops := map[string]uint64{}, map[string]uint64{}
			for b.Loop() {
				for r := range lossyRounds {
					for i := range systems {
						sys := systems[(i+r)%len(systems)]
						rx0, drop0 := l.Peer.LinkStat(b, "rx_packets"), l.Peer.Dropped(b, "INPUT")
						m := peerRun(b, l, clientSpec{Mode: "chargen", Server: sys.server.String(), N: lossyBytes, Via: viaKernel})
						frames[sys.name] += l.Peer.LinkStat(b, "rx_packets") - rx0
						drops[sys.name] += l.Peer.Dropped(b, "INPUT") - drop0
						mbs[sys.name] = append(mbs[sys.name], m["MB/s"])
					}
				}
			}
			b.ReportMetric(0, "ns/op") // the samples' own clocks tell
			med := map[string]float64{}
			for _, sys := range systems {
				v := mbs[sys.name]
				slices.Sort(v)
				med[sys.name] = v[len(v)/2]
				b.ReportMetric(med[sys.name], "MB/s-"+sys.name)
				b.Logf("%s: MB/s %.1f; the peer dropped %.2f %% of %d frames on arrival",
					sys.name, v, 100*float64(drops[sys.name])/float64(max(1, frames[sys.name])), frames[sys.name])
			}
			for _, cc := range lossyCCs {
				if k := med["kernel-"+cc.name]; k > 0 {
					b.ReportMetric(med["xdpnet"]/k, "MB/s-x-kernel-"+cc.name)
				}
			}
		})
	}
}
