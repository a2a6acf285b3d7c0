package ip

import (
	"net/netip"

	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// TestNoAllocations checks every per-packet path with AllocsPerRun.
func TestNoAllocations(t *testing.T) {
	l := newLayer(t)
	udp := udpTo(7, 64)
	echo := echoRequest(ours, 1, 1, pattern(56, 0), 0)
	errMsg := icmpError(wire.ICMPDestUnreachable, wire.ICMPFragNeeded, 1400, sent(t, l, far, 1500))
	fs := split(9, pattern(3000, 0), 1480)
	echoFrags := splitAs(10, wire.ProtoICMP, icmpMsg(wire.ICMPEcho, 0, 1, pattern(2992, 0)), 1480)
	out := make([]byte, 1500)
	var now time.Duration
	paths := map[string]func(){
		"Input UDP": func() { l.Input(now, udp) },
		"Input+ICMPInput echo": func() {
			d, _ := l.Input(now, echo)
			l.ICMPInput(now, d, out)
		},
		"Input+ICMPInput frag needed": func() {
			d, _ := l.Input(now, errMsg)
			l.ICMPInput(now, d, out)
		},
		"Input+Unreachable": func() {
			now += time.Millisecond
			d, _ := l.Input(now, udp)
			l.Unreachable(now, d, wire.ICMPPortUnreachable, out)
		},
		"reassembly": func() {
			for _, f := range fs {
				l.Input(now, f)
			}
		},
		"reassembly timeout": func() {
			l.Input(now, fs[0])
			now += time.Minute
			tick(l, now, out)
		},
		"reassembled echo, reply in place, fragmented": func() {
			for _, f := range echoFrags {
				d, ok := l.Input(now, f)
				if ok {
					n, _ := l.ICMPInput(now, d, d.Header)
					for i := range Fragments(d.Header[:n], 1500) {
						l.WriteFragment(out, d.Header[:n], 1500, i)
					}
				}
			}
		},
		"WriteHeader": func() { _, _ = l.WriteHeader(out, netip.Addr{}, far, wire.ProtoTCP, 1000) },
		"Route":       func() { _, _ = l.Route(far) },
		"PathMTU":     func() { l.PathMTU(now, far) },
		"Stats":       func() { l.Stats() },
	}
	for name, f := range paths {
		assert.Zero(t, testing.AllocsPerRun(1000, f), name)
	}
	require.NotZero(t, l.Stats().ICMP.OutMsgs)
}

func BenchmarkInputUDP(b *testing.B) {
	l := newLayer(b)
	p := udpTo(7, 64)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := l.Input(0, p); !ok {
			b.Fatal("dropped")
		}
	}
}

func BenchmarkEchoReply(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"56B", 56}, {"1472B", 1472}} {
		b.Run(size.name, func(b *testing.B) {
			l := newLayer(b)
			req := echoRequest(ours, 1, 1, pattern(size.n, 0), 0)
			out := make([]byte, 1500)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				d, _ := l.Input(0, req)
				if n, _ := l.ICMPInput(0, d, out); n == 0 {
					b.Fatal("no reply")
				}
			}
		})
	}
}

func BenchmarkWriteHeader(b *testing.B) {
	l := newLayer(b)
	out := make([]byte, 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.WriteHeader(out, netip.Addr{}, far, wire.ProtoTCP, 1460); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReassemble3Fragments(b *testing.B) {
	l := newLayer(b)
	fs := split(9, pattern(4000, 0), 1480)
	b.SetBytes(4000)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fs {
			l.Input(0, f)
		}
	}
}

func BenchmarkFragment8K(b *testing.B) {
	l := newLayer(b)
	pkt := make([]byte, 8028)
	_, _ = l.WriteHeader(pkt, netip.Addr{}, peer, wire.ProtoUDP, 8008)
	out := make([]byte, 1500)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for i := range Fragments(pkt, 1500) {
			l.WriteFragment(out, pkt, 1500, i)
		}
	}
}

func BenchmarkPathMTU(b *testing.B) {
	l := newLayer(b)
	b.ReportAllocs()
	for b.Loop() {
		l.PathMTU(0, far)
	}
}
