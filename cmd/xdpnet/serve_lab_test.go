package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// buildBinary builds xdpnet once per test into a temporary directory.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xdpnet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// server is `xdpnet serve` running in the lab's Local namespace.
type server struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	lines  chan string
}

func startServe(t *testing.T, l *lab.Lab, bin string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	args = append([]string{"serve", "-iface", l.Local.Link, "-addr", netip.PrefixFrom(l.StackAddr, 24).String()}, args...)
	s := &server{cmd: l.Local.Command(ctx, bin, args...), stdout: &bytes.Buffer{}, lines: make(chan string, 100)}
	out, err := s.cmd.StdoutPipe()
	require.NoError(t, err)
	s.cmd.Stderr = s.stdout
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	return s
}

// next returns the server's next line of output, failing after 10 s.
func (s *server) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-s.lines:
		require.True(t, ok, "xdpnet exited; stderr: %s", s.stdout)
		return line
	case <-time.After(10 * time.Second):
		t.Fatalf("no output from xdpnet; stderr: %s", s.stdout)
		return ""
	}
}

func xdpAttached(t *testing.T, h *lab.Host) bool {
	t.Helper()
	var attached bool
	require.NoError(t, h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return err
		}
		attached = link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached
		return nil
	}))
	return attached
}

var (
	pingSummary   = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`)
	arpingReplies = regexp.MustCompile(`(?m)^\d+ bytes from ` + `([0-9a-f:]{17})`)
)

func TestServeLab(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	s := startServe(t, l, bin)
	assert.Contains(t, s.next(t), "xdpnet: serving 198.18.0.2/24 on "+l.Local.Link+": 1 queue(s), native XDP, copy mode")
	require.True(t, xdpAttached(t, l.Local))

	t.Run("Ping", func(t *testing.T) {
		out := l.Peer.Run(t, "ping", "-c", "10", "-i", "0.01", "-W", "1", l.StackAddr.String())
		m := pingSummary.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		assert.Equal(t, "10", m[2], out)
	})
	t.Run("Arping", func(t *testing.T) {
		out := l.Peer.Run(t, "arping", "-c", "3", "-I", l.Peer.Link, l.StackAddr.String())
		replies := arpingReplies.FindAllStringSubmatch(out, -1)
		require.Len(t, replies, 3, out)
		for _, r := range replies {
			assert.Equal(t, l.Local.MAC.String(), r[1])
		}
	})
	t.Run("UDPEcho", func(t *testing.T) {
		c := dialPeer(t, l, 7)
		for _, msg := range []string{"x", "hello, echo", strings.Repeat("z", 1472)} {
			_, err := c.Write([]byte(msg))
			require.NoError(t, err)
			buf := make([]byte, 2048)
			n, err := c.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, msg, string(buf[:n]))
		}
	})
	t.Run("UDPDiscard", func(t *testing.T) {
		c := dialPeer(t, l, 9)
		_, err := c.Write([]byte("into the void"))
		require.NoError(t, err)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 64))
		var ne net.Error
		require.ErrorAs(t, err, &ne, "discard answers nothing, not even port unreachable")
		assert.True(t, ne.Timeout())
	})
	t.Run("TCPEcho", func(t *testing.T) {
		// Several connections at once, each echoing 1 MiB written in
		// pieces while its echo is read back.
		const conns, size = 8, 1 << 20
		errs := make(chan error, conns)
		for i := range conns {
			c := dialPeerNet(t, l, "tcp4", 7)
			go func() { errs <- echoRoundTrip(c, size, byte(i)) }()
		}
		for range conns {
			assert.NoError(t, <-errs)
		}
	})
	t.Run("TCPDiscard", func(t *testing.T) {
		c := dialPeerNet(t, l, "tcp4", 9)
		_, err := c.Write(bytes.Repeat([]byte("void"), 1<<18))
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		n, err := c.Read(make([]byte, 64))
		assert.Zero(t, n, "discard answers nothing")
		assert.ErrorIs(t, err, io.EOF, "the server's FIN follows ours")
	})
	t.Run("TCPChargen", func(t *testing.T) {
		c := dialPeerNet(t, l, "tcp4", 19)
		buf := make([]byte, 74*100)
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		lines := strings.Split(string(buf), "\r\n")
		require.Len(t, lines, 101)
		for i, line := range lines[:100] {
			require.Len(t, line, 72)
			assert.Equal(t, byte(' '+i%95), line[0], "line %d starts one character further on", i)
		}
	})
	t.Run("TCPClosedPort", func(t *testing.T) {
		err := l.Peer.Do(func() error {
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.StackAddr, 4444).String(), 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	})
	t.Run("SecondServerRefused", func(t *testing.T) {
		out, err := l.Local.Command(context.Background(), bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24").CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 1, ee.ExitCode())
		assert.Contains(t, string(out), l.Local.Link+" is in use by another process")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(string(out)), "\n")+1, "one line: %s", out)
	})

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for line := range s.lines {
		rest = append(rest, line)
	}
	require.NoError(t, s.cmd.Wait(), "exit status after SIGTERM; stderr: %s", s.stdout)
	assert.Contains(t, strings.Join(rest, "\n"), "10 ping(s) answered")
	assert.Contains(t, strings.Join(rest, "\n"), "xdpnet: TCP SYN cookies: 0 sent, 0 received, 0 failed; listen overflows 0, drops 0")
	assert.Contains(t, strings.Join(rest, "\n"), "XDP program detached")
	assert.False(t, xdpAttached(t, l.Local), "no XDP program left after SIGTERM")
}

// TestServeQueues: with two queues, an ARP reply may land on the other
// queue than the one that asked; the pollers share replies, so every ping
// is answered, even when the kernel forgets our MAC between rounds and the
// stack must resolve the kernel again.
func TestServeQueues(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{Queues: 2})
	s := startServe(t, l, bin, "-queues", "2")
	assert.Contains(t, s.next(t), "2 queue(s)")
	for round := range 4 {
		out := l.Peer.Run(t, "ping", "-c", "20", "-i", "0.01", "-W", "1", l.StackAddr.String())
		m := pingSummary.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		assert.Equal(t, "20", m[2], "round %d: %s", round, out)
		l.Peer.Run(t, "ip", "neigh", "flush", "dev", l.Peer.Link)
	}
}

// TestServeKilled: even SIGKILL leaves no XDP program behind.
func TestServeKilled(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{Mode: lab.Generic})
	s := startServe(t, l, bin, "-xdp-mode", "generic")
	assert.Contains(t, s.next(t), "generic XDP")
	require.True(t, xdpAttached(t, l.Local))
	require.NoError(t, s.cmd.Process.Kill())
	err := s.cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee) && !ee.Success())
	assert.False(t, xdpAttached(t, l.Local), "the kernel detached the program with the process")
}

func dialPeer(t *testing.T, l *lab.Lab, port uint16) net.Conn {
	return dialPeerNet(t, l, "udp4", port)
}

// echoRoundTrip writes size bytes derived from seed to an echo server
// while it reads the echo back, and checks it byte for byte.
func echoRoundTrip(c net.Conn, size int, seed byte) error {
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7) ^ seed
	}
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < size; off += 10000 {
			if _, err := c.Write(want[off:min(size, off+10000)]); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err := errors.Join(err, <-werr); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo of %d bytes differs (got %d bytes)", size, len(got))
	}
	return nil
}

// dialPeerNet connects from the kernel in the peer's namespace to the
// stack's port over network ("udp4" or "tcp4"), with a 5 s deadline.
func dialPeerNet(t *testing.T, l *lab.Lab, network string, port uint16) net.Conn {
	t.Helper()
	var c net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		c, err = net.Dial(network, netip.AddrPortFrom(l.StackAddr, port).String())
		return err
	}))
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	return c
}

// TestServeWithoutPrivileges runs serve as user nobody: one line that says
// what privileges it needs, exit status 1, and nothing attached.
func TestServeWithoutPrivileges(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	require.NoError(t, err, "setpriv (util-linux) runs the binary as nobody")
	bin := buildBinary(t)
	// The build directory is root's alone; nobody needs a path it may run.
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o755))
	l := lab.New(t, lab.Config{})
	out, err := l.Local.Command(context.Background(), setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	assert.Equal(t, 1, ee.ExitCode())
	msg := strings.TrimSpace(string(out))
	assert.Contains(t, msg, "permission denied: missing CAP_NET_RAW (for AF_XDP sockets), CAP_BPF (for BPF maps and programs), CAP_NET_ADMIN (for the XSKMAP and the XDP program); xdpnet needs CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN and CAP_IPC_LOCK, or root")
	assert.NotContains(t, msg, "\n", "one line")
	assert.False(t, xdpAttached(t, l.Local))
}
