package sockapi_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// twReuseRun has the kernel in the lab's Peer namespace make n sequential
// short connections to an xdpnet listener, with tcp_tw_reuse=1 and ports
// from lo–hi, and the kernel's tcp_tw_reuse_delay of delayMS: each one
// reads a byte and closes first, so its port waits in TIME-WAIT in the
// kernel. A connect that finds no port (EADDRNOTAVAIL) waits 10 ms and
// tries again, until a connection takes longer than patience. It returns
// the connections made, the connects refused, and the time taken.
func twReuseRun(t *testing.T, cfg sockapi.Config, n int, lo, hi, delayMS int, patience time.Duration) (made, refused int, took time.Duration) {
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
	took = time.Since(start)
	t.Logf("%d connections in %v (%.0f/s), slowest connect %v, %d connects found no port; ports %d–%d, tw_reuse_delay %d ms",
		made, took.Round(time.Millisecond), float64(made)/took.Seconds(), slowest.Round(time.Millisecond), refused, lo, hi, delayMS)
	require.NoError(t, err)
	return made, refused, took
}

// TestKernelClientReusesTimeWaitPortsLab: a Linux client making many
// short connections to xdpnet, closing first, reuses its TIME-WAIT ports
// (tcp_tw_reuse=1), which the kernel does only for connections that had
// timestamps (RFC 7323). 3,000 connections through 1,000 ports: each port
// serves three, so without timestamps the kernel runs out (its TIME-WAIT
// lasts 60 s) and the run fails after waiting 3 s for a port.
func TestKernelClientReusesTimeWaitPortsLab(t *testing.T) {
	twReuseRun(t, sockapi.Config{}, 3000, 40000, 40999, 1, 3*time.Second)
}

// TestTimeWaitReuseExperimentLab is the experiment, run by hand:
// XDPNET_TWREUSE_N connections (e.g. 40000) with the kernel's default
// port range and tw_reuse delay; XDPNET_TWREUSE_NOTS=1 turns xdpnet's
// timestamps off to see the kernel run out.
func TestTimeWaitReuseExperimentLab(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("XDPNET_TWREUSE_N"))
	if n == 0 {
		t.Skip("set XDPNET_TWREUSE_N to run")
	}
	cfg := sockapi.Config{}
	cfg.TCP.NoTimestamps = os.Getenv("XDPNET_TWREUSE_NOTS") == "1"
	twReuseRun(t, cfg, n, 32768, 60999, 1000, 5*time.Second)
}
