package tcp_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// The cost of an ACK at a large flight: the sent-segment records and
// RACK's walk of them (rack.go) are per segment in flight, so an ACK must
// not cost the whole flight. A scripted SACK peer (MSS 1460, no
// timestamps) holds a flight of 128 KiB or 4 MiB (89 or 2,872 segments,
// a 4 MiB send buffer) and sends one ACK an op, of two more segments;
// ns/op is per ACK, with the output it releases.

// benchFlights are the flights the ACK benchmarks run at, in segments.
var benchFlights = []struct {
	name string
	segs int
}{{"128KiB", (128 << 10) / benchMSS}, {"4MiB", (4 << 20) / benchMSS}}

const (
	benchMSS = 1460
	// benchTick is the virtual time between two ACKs: two segments per
	// 10 µs, 2.3 Gbit/s.
	benchTick = 10 * time.Microsecond
)

// flightBench is a connection with a full flight and its scripted peer.
type flightBench struct {
	s       *stack
	p       *peer
	c       *tcp.Conn
	iss     uint32
	segs    int    // the flight, in segments
	acked   int    // segments acknowledged
	written int    // segments the app wrote
	chunk   []byte // what the app writes
	out     []byte // Output's frame
	ackBuf  []byte // the peer's ACK
}

// newFlightBench opens the connection and grows its flight to segs
// segments: slow start, the peer acknowledging every second segment a
// millisecond after each round, the app writing only as far as the
// flight (so it stays at segs).
func newFlightBench(b *testing.B, segs int) *flightBench {
	b.Helper()
	s := newStack(b, tcp.Config{SendBuffer: 4 << 20, SendBufferMax: 4 << 20})
	p, c, iss := sackConn(b, s, benchMSS, false, true, false)
	f := &flightBench{s: s, p: p, c: c, iss: iss, segs: segs,
		chunk: make([]byte, segs*benchMSS), out: make([]byte, bufLen), ackBuf: make([]byte, wire.TCPMaxHeaderLen)}
	f.write(segs)
	for sent := f.drain(); sent-f.acked < segs; sent += f.drain() {
		s.now += ms
		for f.acked < sent {
			f.ack(min(f.acked+2, sent), 0, 0)
			f.write(f.acked + segs - f.written)
		}
	}
	if out := int(f.c.Pipe()); out != segs*benchMSS {
		b.Fatalf("%d bytes in flight, want %d", out, segs*benchMSS)
	}
	return f
}

// write has the app write n segments.
func (f *flightBench) write(n int) {
	if n <= 0 {
		return
	}
	if w, err := f.c.Write(f.chunk[:n*benchMSS]); err != nil || w != n*benchMSS {
		panic(fmt.Sprintf("wrote %d of %d: %v", w, n*benchMSS, err))
	}
	f.written += n
}

// drain takes every segment the table sends now and returns how many
// carried data.
func (f *flightBench) drain() int {
	n := 0
	for {
		o, ok := f.s.tb.Output(f.s.now, f.out)
		if !ok {
			return n
		}
		if len(wire.TCP(f.out[:o.Len]).Payload()) > 0 {
			n++
		}
	}
}

// ack sends the peer's ACK of the first n segments, SACKing segments
// [from, to) if to > from.
func (f *flightBench) ack(n, from, to int) {
	f.acked = n
	fl := wire.TCPFields{SrcPort: f.p.remote.Port(), DstPort: f.p.local.Port(), Seq: peerISN + 1,
		Ack: f.iss + 1 + uint32(n*benchMSS), Flags: wire.TCPFlagACK, Window: 0xffff, Options: wire.TCPOptions{WindowScale: -1}}
	if to > from {
		fl.Options.NSACK = 1
		fl.Options.SACK[0] = wire.SACKBlock{Left: f.iss + 1 + uint32(from*benchMSS), Right: f.iss + 1 + uint32(to*benchMSS)}
	}
	n = fl.HeaderLen()
	fl.Encode(f.ackBuf[:n], 0, f.p.remote.Addr(), f.p.local.Addr())
	f.s.tb.Input(f.s.now, f.p.remote.Addr(), f.p.local.Addr(), f.ackBuf[:n])
}

// BenchmarkACKClean is an ACK of a flight with nothing lost: two more
// segments acknowledged, the app writing two, and the two going out. Its
// cost must not grow with the flight (RACK's walk stops at the first
// record it cannot yet judge).
func BenchmarkACKClean(b *testing.B) {
	for _, fl := range benchFlights {
		b.Run(fl.name, func(b *testing.B) {
			f := newFlightBench(b, fl.segs)
			b.ReportAllocs()
			for b.Loop() {
				f.s.now += benchTick
				f.ack(f.acked+2, 0, 0)
				f.write(2)
				if n := f.drain(); n != 2 {
					b.Fatalf("%d segments sent, want 2", n)
				}
			}
			if st := f.c.Stats(); st.Retransmits != 0 || st.SentRecordMerges != 0 {
				b.Fatalf("%d retransmissions, %d merged records", st.Retransmits, st.SentRecordMerges)
			}
		})
	}
}

// BenchmarkSACKRecovery is an ACK of a SACK recovery at a full flight:
// the first segment of the flight is lost, and each ACK SACKs two more
// of the rest, until the retransmission's ACK covers them all. RACK takes
// the segment as lost at the second ACK (three SACKed segments) and it is
// resent; the recovery ends with the last ACK. A new connection (its
// setup not timed) plays the next episode. ns/op is per ACK, averaged
// over an episode of segs/2 ACKs.
func BenchmarkSACKRecovery(b *testing.B) {
	for _, fl := range benchFlights {
		b.Run(fl.name, func(b *testing.B) {
			f := newFlightBench(b, fl.segs)
			una, sacked := f.acked, 0
			b.ReportAllocs()
			for b.Loop() {
				f.s.now += benchTick
				if sacked < fl.segs-1 {
					sacked = min(sacked+2, fl.segs-1)
					f.ack(una, una+1, una+1+sacked)
					f.drain()
					continue
				}
				f.ack(una+fl.segs, 0, 0)
				f.drain()
				st := f.c.Stats()
				if _, _, rec := f.c.CongestionWindow(); rec || st.FastRetransmits != 1 || st.Retransmits != 1 || st.SentRecordMerges != 0 {
					b.Fatalf("after the episode: recovery %v, %d fast retransmissions, %d in all, %d merged records",
						rec, st.FastRetransmits, st.Retransmits, st.SentRecordMerges)
				}
				b.StopTimer()
				f = newFlightBench(b, fl.segs)
				una, sacked = f.acked, 0
				b.StartTimer()
			}
			b.ReportMetric(float64(fl.segs/2+1), "ACKs/episode")
		})
	}
}
