package sockapi_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// twReuseRun has the kernel in the lab's Peer namespace make n sequential
// short connections to an xdpnet listener, with tcp_tw_reuse=1 and ports
// from lo–hi, and the kernel's tcp_tw_reuse_delay of delayMS: each one
// reads a byte and closes first, so its port waits in TIME-WAIT in the
// kernel. A connect that finds no port (EADDRNOTAVAIL) waits 10 ms and
// tries again, until a connection takes longer than patience. It returns
// the connections made, the connects refused, and why the run stopped
// short, if it did.
func twReuseRun(t *testing.T, cfg sockapi.Config, n int, lo, hi, delayMS int, patience time.Duration) (made, refused int, err error) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, cfg)
	ln, err := s.Listen("tcp", ":7010")
	require.NoError(t, err)
	go serveEach(ln, func(c net.Conn) {
		c.Write([]byte("y"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // until the client's FIN
	})
	l.Peer.Run(t, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1",
		fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", lo, hi),
		fmt.Sprintf("net.ipv4.tcp_tw_reuse_delay=%d", delayMS))
	addr := net.JoinHostPort(l.StackAddr.String(), "7010")
	start := time.Now()
	var slowest time.Duration
	err = l.Peer.Do(func() error {
		buf := make([]byte, 1)
		for made < n {
			since := time.Now()
			var c net.Conn
			for {
				c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
				if !errors.Is(err, syscall.EADDRNOTAVAIL) {
					break
				}
				refused++
				if time.Since(since) > patience {
					return fmt.Errorf("connection %d: no port for %v: %w", made, patience, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				return fmt.Errorf("connection %d: %w", made, err)
			}
			slowest = max(slowest, time.Since(since))
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.ReadFull(c, buf)
			c.Close()
			if err != nil {
				return fmt.Errorf("connection %d: read: %w", made, err)
			}
			made++
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("%d connections in %v (%.0f/s), slowest connect %v, %d connects found no port; ports %d–%d, tw_reuse_delay %d ms",
		made, took.Round(time.Millisecond), float64(made)/took.Seconds(), slowest.Round(time.Millisecond), refused, lo, hi, delayMS)
	return made, refused, err
}

// TestKernelClientReusesTimeWaitPortsLab: a Linux client making many
// short connections to xdpnet, closing first, reuses its TIME-WAIT ports
// (tcp_tw_reuse=1), which the kernel does only for connections that had
// timestamps (RFC 7323). 3,000 connections through 1,000 ports: each port
// serves three, so without timestamps the kernel runs out (its TIME-WAIT
// lasts 60 s) and the run fails after waiting 3 s for a port.
func TestKernelClientReusesTimeWaitPortsLab(t *testing.T) {
	_, _, err := twReuseRun(t, sockapi.Config{}, 3000, 40000, 40999, 1, 3*time.Second)
	require.NoError(t, err)
}

// TestKernelClientRunsOutWithoutTimestampsLab is the control: with
// xdpnet's timestamps off, the same client gets no port back from
// TIME-WAIT, so through 100 ports it makes 100 connections and then
// finds none for a second (EADDRNOTAVAIL).
func TestKernelClientRunsOutWithoutTimestampsLab(t *testing.T) {
	cfg := sockapi.Config{}
	cfg.NoTimestamps = true
	made, refused, err := twReuseRun(t, cfg, 200, 40000, 40099, 1, time.Second)
	require.ErrorIs(t, err, syscall.EADDRNOTAVAIL, "the kernel reused a port whose connection had no timestamps")
	require.Equal(t, 100, made, "connections before the ports ran out")
	require.NotZero(t, refused)
}
