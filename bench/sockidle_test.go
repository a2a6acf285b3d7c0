package main

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// idleSlice is BenchmarkSockIdle's op: a slice of idleness.
const idleSlice = 100 * time.Millisecond

// BenchmarkSockIdle measures what an idle xdpnet costs: a stack from
// sockapi.Open with its listeners (the goroutine servers and the
// poller-side services of sockStack) and one open, idle connection from a
// kernel client, after one round trip on it. An op is idleSlice of
// idleness (so ns/op is about idleSlice); it reports this whole process's
// CPU time per op (getrusage: every thread, the test framework's
// included), the same as a percentage of one CPU, and the poller's parks
// per second (the two reads of Stack.Stats each cost one).
func BenchmarkSockIdle(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	s := sockStack(b, l)
	c, err := idleConn(l, netip.AddrPortFrom(l.StackAddr, sockEchoPort))
	require.NoError(b, err)
	defer c.Close()
	b.ResetTimer()
	parks0 := parks(s)
	cpu, wall := idleCPU(context.Background(), time.Duration(b.N)*idleSlice)
	parks1 := parks(s)
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(100*float64(cpu)/float64(wall), "cpu-%")
	b.ReportMetric(float64(parks1-parks0)/wall.Seconds(), "parks/s")
}

// parks is the stack's parks so far, all pollers.
func parks(s *sockapi.Stack) uint64 {
	var n uint64
	for _, q := range s.Counters().Queues {
		n += q.Poller.Parks
	}
	return n
}

// idleConn opens one connection from the peer's kernel to server, makes
// one round trip on it and lets the stack settle: an idle stack holding a
// connection.
func idleConn(l *lab.Lab, server netip.AddrPort) (c net.Conn, err error) {
	err = l.Peer.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", server.String(), 5*time.Second)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeLimit))
	if _, err = c.Write([]byte{1}); err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	time.Sleep(idleSettle)
	return c, nil
}
