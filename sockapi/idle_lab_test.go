package sockapi_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestIdleStackCPULab: an idle stack parks. With a listener and one open
// connection from a kernel client, after one round trip on it, the whole
// test process uses under 5 % of a CPU over 2 s; a poller that spun
// would use about 100 %. The bound is generous on purpose (the process's
// garbage collector and the test framework count too);
// bench's BenchmarkSockIdle measures the figure itself.
func TestIdleStackCPULab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":7020")
	require.NoError(t, err)
	go serveEach(ln, func(c net.Conn) { io.Copy(c, c) })
	var c net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(l.StackAddr.String(), "7020"), 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte{1})
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(t, err)

	time.Sleep(500 * time.Millisecond) // the poller's spin and the handshake's timers end
	cpu0, t0 := lab.ProcessCPU(), time.Now()
	time.Sleep(2 * time.Second)
	used := float64(lab.ProcessCPU()-cpu0) / float64(time.Since(t0))
	t.Logf("idle: %.3f %% of a CPU", 100*used)
	assert.Less(t, used, 0.05, "an idle stack's share of a CPU")
}
