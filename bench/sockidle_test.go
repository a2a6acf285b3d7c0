package bench

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// Idle measurement: the stack settles for idleSettle, then the process's
// CPU time is read over b.N slices of idleSlice.
const (
	idleSettle = 500 * time.Millisecond
	idleSlice  = 100 * time.Millisecond
)

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
	var c net.Conn
	require.NoError(b, l.Peer.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(l.StackAddr, sockEchoPort).String(), 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(b, c.SetDeadline(time.Now().Add(timeLimit)))
	_, err := c.Write([]byte{1})
	require.NoError(b, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(b, err)

	time.Sleep(idleSettle)
	b.ResetTimer()
	parks0, cpu0, t0 := parks(s), lab.ProcessCPU(), time.Now()
	for range b.N {
		time.Sleep(idleSlice)
	}
	cpu1, t1, parks1 := lab.ProcessCPU(), time.Now(), parks(s)
	b.StopTimer()
	wall := t1.Sub(t0)
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(100*float64(cpu1-cpu0)/float64(wall), "cpu-%")
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
