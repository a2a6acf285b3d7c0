package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// synFloodSYNs bounds each of the five senders of BenchmarkSYNFlood: it
// stops once the client is done, or after this many SYNs.
const synFloodSYNs = 200_000

// BenchmarkSYNFlood measures a listener that serves while a SYN flood
// fills its SYN queue: five hping3 senders in the peer's namespace send
// SYNs as fast as they can from spoofed sources that never answer
// (lab.SpoofOnPeer), while a kernel client there connects, sends a byte,
// reads its echo and closes, b.N times one after the other; the flood
// stops when the client is done. The servers are goroutine echoes: Go's
// net on Local's kernel address (port 7) and a sockapi listener on
// xdpnet's (port 2007), on the same veth pair, flooded in turn. Metrics:
//   - syn/s: the SYNs the senders sent, per second of flood;
//   - cookies/s: SYN cookies the listener sent (xdpnet's counters, the
//     kernel's TcpExtSyncookiesSent): the flood it absorbed, once its SYN
//     queue (256 half-open for xdpnet, 4096 for the kernel) is full;
//   - drops/s: SYNs dropped: by the listener (ListenDrops), by veth
//     (Local's rx_dropped) and, for xdpnet, by the AF_XDP receive ring;
//   - conns/s, p50-µs and p99-µs: the legitimate client's connections
//     during the flood and one connection's whole life; fails: those that
//     did not complete within 10 s.
//
// The client runs in this process, in the peer's namespace: its figures
// include the Go netpoller's wakeups, the same for both servers. The
// kernel ran bbr.
func BenchmarkSYNFlood(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	s := sockStack(b, l)
	kernelTCP(b, l.Local, echoPort, tcpEcho)
	l.SpoofOnPeer(b)
	kernel := func(b *testing.B) map[string]float64 {
		return synFlood(b, l, netip.AddrPortFrom(kernelAddr(l), echoPort), func() (cookies, drops uint64) {
			m := l.Local.Netstat(b)
			return m["TcpExtSyncookiesSent"], m["TcpExtListenDrops"] + l.Local.LinkStat(b, "rx_dropped")
		})
	}
	xdpnet := func(b *testing.B) map[string]float64 {
		return synFlood(b, l, netip.AddrPortFrom(l.StackAddr, sockEchoPort), func() (cookies, drops uint64) {
			c := s.Counters()
			cookies, drops = c.TCPExt.SyncookiesSent, c.TCPExt.ListenDrops
			for _, q := range c.Queues {
				drops += q.Link.RxDropped
			}
			return cookies, drops + l.Local.LinkStat(b, "rx_dropped")
		})
	}
	compare(b, []string{"cookies/s", "conns/s", "p50-µs"}, kernel, xdpnet)
}

// synFlood floods server and connects to it b.N times meanwhile (see
// BenchmarkSYNFlood); counters reads the server's cookies sent and SYNs
// dropped.
func synFlood(b *testing.B, l *lab.Lab, server netip.AddrPort, counters func() (cookies, drops uint64)) map[string]float64 {
	flood := l.StartSYNFlood(b, server, synFloodSYNs, time.Microsecond)
	cookies0, drops0 := counters()
	// The SYNs sent: the peer's frames, less its kernel's own segments
	// (the client's; hping3's raw ones are not counted there).
	frames := func() uint64 { return l.Peer.LinkStat(b, "tx_packets") - l.Peer.Netstat(b)["TcpOutSegs"] }
	frames0, start := frames(), time.Now()
	b.ResetTimer()
	lat, fails := l.EchoConnects(b, server, b.N)
	b.StopTimer()
	took := time.Since(start)
	cookies, drops := counters()
	sent := frames() - frames0
	if !flood.Running() {
		b.Logf("warning: the flood ended before the client's %d connections did", b.N)
	}
	flood.Stop()
	sec := took.Seconds()
	m := map[string]float64{
		"syn/s":     float64(sent) / sec,
		"cookies/s": float64(cookies-cookies0) / sec,
		"drops/s":   float64(drops-drops0) / sec,
		"conns/s":   float64(len(lat)) / sec,
		"fails":     float64(len(fails)),
	}
	latencies(m, lat)
	delete(m, "avg-µs")
	if len(fails) > 0 {
		b.Logf("warning: %d of %d connections failed during the flood, the first: %v", len(fails), b.N, fails[0])
	}
	b.Logf("%s: %d SYNs in %v, %d cookies, %d/%d connections", server, sent, took.Round(time.Millisecond),
		cookies-cookies0, len(lat), b.N)
	return report(b, m)
}
