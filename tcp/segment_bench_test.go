package tcp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// benchBatch is how many full segments a round of BenchmarkSegments
// moves: a receive batch, acknowledged by one ACK.
const benchBatch = 8

// BenchmarkSegments is the cost of the segment path, both ends: each
// round the sender's app writes benchBatch segments of data, its table
// sends them, the receiver's takes them and its app reads them, and the
// one ACK of the batch comes back. Virtual time moves 100 µs a round, so
// every ACK brings an RTT sample. ns/segment is per data segment, its
// share of the ACK included.
func BenchmarkSegments(b *testing.B) {
	addrA, addrB := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	a, rb := newStack(b, tcp.Config{Addrs: []netip.Addr{addrA}}), newStack(b, tcp.Config{Addrs: []netip.Addr{addrB}})
	l, err := rb.tb.Listen(netip.AddrPortFrom(addrB, 5001), 1)
	require.NoError(b, err)
	c, err := a.tb.Dial(0, netip.AddrPort{}, netip.AddrPortFrom(addrB, 5001))
	require.NoError(b, err)
	frame := make([]byte, bufLen)
	// move hands every segment from's table sends to to's, and reports
	// how many carried data.
	move := func(from, to *stack, fromAddr, toAddr netip.Addr) int {
		n := 0
		for {
			out, ok := from.tb.Output(from.now, frame)
			if !ok {
				return n
			}
			if out.Len > 32+20 {
				n++
			}
			to.tb.Input(to.now, fromAddr, toAddr, frame[:out.Len])
		}
	}
	round := func() {
		a.now += 100 * time.Microsecond
		rb.now = a.now
		move(a, rb, addrA, addrB)
		move(rb, a, addrB, addrA)
	}
	round() // SYN, SYN,ACK
	round() // the ACK
	s, err := l.Accept()
	require.NoError(b, err)
	chunk := make([]byte, benchBatch*(1460-12)) // full segments: the MSS less timestamps
	sink := make([]byte, len(chunk))
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
		a.now += 100 * time.Microsecond
		rb.now = a.now
		if n := move(a, rb, addrA, addrB); n != benchBatch {
			b.Fatalf("%d segments sent, want %d", n, benchBatch)
		}
		for got := 0; got < len(sink); {
			n, err := s.Read(sink[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		move(rb, a, addrB, addrA)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/segment")
}
