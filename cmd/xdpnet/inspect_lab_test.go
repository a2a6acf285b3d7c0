package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// kernelCounterpart is the state the kernel's end of a connection shows
// in `ss -tan` while xdpnet's end is in a state: the closer's FIN_WAIT2
// is the other's CLOSE_WAIT, both ways; xdpnet's TIME_WAIT follows the
// kernel's LAST_ACK, whose end is no socket at all ("").
var kernelCounterpart = map[string]string{
	"ESTABLISHED": "ESTAB",
	"CLOSE_WAIT":  "FIN-WAIT-2",
	"FIN_WAIT2":   "CLOSE-WAIT",
	"TIME_WAIT":   "",
}

// TestSocketsLab: a kernel client in the peer's namespace holds 50
// connections to an xdpnet server in this process, 20 ESTABLISHED, 10
// with the client's half closed (xdpnet CLOSE_WAIT), 10 with the
// server's closed (xdpnet FIN_WAIT2), 10 closed by the server first and
// then by the client (xdpnet TIME_WAIT); `xdpnet sockets -json` lists
// exactly those 4-tuples and the listener, and each connection's state
// is the counterpart of what `ss -tan` shows of the kernel's end.
func TestSocketsLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	path := filepath.Join(t.TempDir(), "lab.sock")
	var s *sockapi.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24), AdminSocket: path})
		return err
	}))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	ln, err := s.Listen("tcp", ":5000")
	require.NoError(t, err)
	defer ln.Close()

	const n = 50
	group := func(i int) string { // what connection i is to become, on xdpnet's side
		switch {
		case i < 20:
			return "ESTABLISHED"
		case i < 30:
			return "CLOSE_WAIT"
		case i < 40:
			return "FIN_WAIT2"
		}
		return "TIME_WAIT"
	}
	clients := make([]*net.TCPConn, n)
	servers := make([]net.Conn, n)
	server := netip.AddrPortFrom(l.StackAddr, 5000)
	for i := range n {
		require.NoError(t, l.Peer.Do(func() error {
			c, err := net.DialTimeout("tcp4", server.String(), 5*time.Second)
			if err == nil {
				clients[i] = c.(*net.TCPConn)
			}
			return err
		}))
		t.Cleanup(func() { clients[i].Close() })
		sc, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { sc.Close() })
		require.Equal(t, clients[i].LocalAddr().String(), sc.RemoteAddr().String())
		servers[i] = sc
	}
	for i := range n {
		switch group(i) {
		case "CLOSE_WAIT":
			require.NoError(t, clients[i].CloseWrite())
		case "FIN_WAIT2", "TIME_WAIT":
			require.NoError(t, servers[i].Close())
		}
	}
	// The client closes a TIME_WAIT one once it saw the server's FIN:
	// xdpnet's end in FIN_WAIT2, the kernel's in CLOSE_WAIT.
	states := func() map[string]string { // xdpnet's, by the client's port
		m := map[string]string{}
		for _, so := range s.Sockets() {
			if so.Remote.IsValid() {
				m[strconv.Itoa(int(so.Remote.Port()))] = so.State.String()
			}
		}
		return m
	}
	port := func(i int) string { return strconv.Itoa(clients[i].LocalAddr().(*net.TCPAddr).Port) }
	waitStates := func(want func(i int) string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, done := states(), true
			for i := range n {
				done = done && got[port(i)] == want(i)
			}
			if done {
				return
			}
			require.True(t, time.Now().Before(deadline), "states: %v", got)
			time.Sleep(time.Millisecond)
		}
	}
	waitStates(func(i int) string {
		if group(i) == "TIME_WAIT" {
			return "FIN_WAIT2"
		}
		return group(i)
	})
	for i := range n {
		if group(i) == "TIME_WAIT" {
			require.NoError(t, clients[i].Close())
		}
	}
	waitStates(group)

	out, err := runCmd("sockets", "-json", "-socket", path)
	require.NoError(t, err)
	var got []struct {
		Proto, Local, Remote, State string
		PID                         int
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	var tuples, want []string
	for _, so := range got {
		tuples = append(tuples, strings.Join([]string{so.Proto, so.Local, so.Remote, so.State}, " "))
		assert.Equal(t, os.Getpid(), so.PID)
	}
	want = append(want, "tcp 0.0.0.0:5000  LISTEN")
	for i := range n {
		want = append(want, fmt.Sprintf("tcp %s %s %s", server, clients[i].LocalAddr(), group(i)))
	}
	assert.ElementsMatch(t, want, tuples, "exactly the listener and the 50 connections")

	// The kernel's ends follow on xdpnet's last ACKs, which may still
	// be on the wire: read ss until they agree, or for 10 s.
	ssLine := regexp.MustCompile(`^(\S+)\s+\d+\s+\d+\s+198\.18\.0\.3:(\d+)\s+(\S+)$`)
	var kernel, wantKernel map[string]string // the kernel's states, by its port
	wantKernel = map[string]string{}
	for _, so := range got {
		if so.State != "LISTEN" {
			if k := kernelCounterpart[so.State]; k != "" {
				wantKernel[so.Remote[strings.LastIndexByte(so.Remote, ':')+1:]] = k
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		kernel = map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(l.Peer.Run(t, "ss", "-tanH")), "\n") {
			m := ssLine.FindStringSubmatch(line)
			require.NotNil(t, m, "ss line %q", line)
			require.Equal(t, server.String(), m[3], "the kernel has no other connection: %q", line)
			kernel[m[2]] = m[1]
		}
		if len(kernel) == len(wantKernel) && fmt.Sprint(kernel) == fmt.Sprint(wantKernel) || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, wantKernel, kernel, "state by state, ss -tan shows the counterparts, and no socket for xdpnet's TIME_WAIT")
}

// TestCountersLab: against `xdpnet serve` (its admin socket on by
// default, found by -pid), exactly N pings, M UDP datagrams to discard
// and K TCP connections to discard from the kernel's side make
// `xdpnet counters -json` count N IcmpInEchos, M UdpInDatagrams and K
// TcpPassiveOpens, and the kernel's own nstat counts what it sent alike.
func TestCountersLab(t *testing.T) {
	const pings, datagrams, conns = 7, 11, 5
	bin := buildBinary(t)
	dir := adminDir(t) // serve inherits it
	l := lab.New(t, lab.Config{})
	srv := startServe(t, l, bin)
	pid := srv.cmd.Process.Pid
	// `ip netns exec` execs serve, so its PID is the process's.
	assert.Contains(t, srv.next(t), fmt.Sprintf("; admin socket %s/%s.%d.sock", dir, l.Local.Link, pid))

	counters := func() map[string]int64 {
		t.Helper()
		out, err := runCmd("counters", "-json", "-a", "-pid", strconv.Itoa(pid))
		require.NoError(t, err)
		var m map[string]int64
		require.NoError(t, json.Unmarshal([]byte(out), &m), out)
		return m
	}
	history := filepath.Join(t.TempDir(), "nstat")
	nstat := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := l.Peer.Command(ctx, "nstat", args...)
		cmd.Env = append(os.Environ(), "NSTAT_HISTORY="+history) // this test's alone
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	before := counters()
	nstat("-n") // the kernel's counters from now on

	out := l.Peer.Run(t, "ping", "-c", strconv.Itoa(pings), "-i", "0.01", "-W", "1", l.StackAddr.String())
	require.Contains(t, out, fmt.Sprintf("%d packets transmitted, %d received", pings, pings), out)
	u := dialPeer(t, l, 9)
	for range datagrams {
		_, err := u.Write([]byte("discard me"))
		require.NoError(t, err)
	}
	for range conns {
		c := dialPeerNet(t, l, "tcp4", 9)
		require.NoError(t, c.Close())
	}

	// The last datagrams and ACKs may still be on their way: wait for
	// them (bounded), then compare exactly.
	want := map[string]int64{"IcmpInEchos": pings, "UdpInDatagrams": datagrams, "TcpPassiveOpens": conns}
	deadline := time.Now().Add(10 * time.Second)
	var delta map[string]int64
	for {
		after := counters()
		delta = map[string]int64{}
		arrived := true
		for name, n := range want {
			delta[name] = after[name] - before[name]
			arrived = arrived && delta[name] >= n
		}
		if arrived || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, want, delta, "xdpnet's deltas")

	kernel := map[string]int64{}
	for _, line := range strings.Split(nstat("-az", "IcmpOutEchos", "UdpOutDatagrams", "TcpActiveOpens"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			kernel[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	assert.Equal(t, map[string]int64{"IcmpOutEchos": pings, "UdpOutDatagrams": datagrams, "TcpActiveOpens": conns}, kernel,
		"the kernel's nstat: what it sent")
}

// TestServeAdminLab: serve's admin socket goes with it on SIGTERM;
// -admin off has none; a path it cannot take is one line, exit status
// 1, with no XDP program left; the default place it cannot make, it
// serves without.
func TestServeAdminLab(t *testing.T) {
	bin := buildBinary(t)
	dir := adminDir(t)
	l := lab.New(t, lab.Config{})

	srv := startServe(t, l, bin)
	path := fmt.Sprintf("%s/%s.%d.sock", dir, l.Local.Link, srv.cmd.Process.Pid)
	require.Contains(t, srv.next(t), "; admin socket "+path)
	_, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	for range srv.lines {
	}
	require.NoError(t, srv.cmd.Wait())
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket went with serve")

	// A lab each from here: a serve right after another on the same
	// veth may meet the kernel still releasing its AF_XDP socket (EBUSY).
	l = lab.New(t, lab.Config{})
	srv = startServe(t, l, bin, "-admin", "off")
	assert.NotContains(t, srv.next(t), "admin socket")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	for range srv.lines {
	}
	require.NoError(t, srv.cmd.Wait())

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	out, err := l.Local.Command(context.Background(), bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24", "-admin", file).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Equal(t, "xdpnet: sockapi: admin socket "+file+": exists and is not a socket; choose another with -admin PATH (or XDPNET_RUNDIR=DIR), or -admin off\n", string(out))
	assert.False(t, xdpAttached(t, l.Local), "the XDP program went with the failed start")

	// The default place it cannot make (a stack run with capabilities,
	// not root, cannot write /run): it serves without, and says so.
	t.Setenv(sockapi.AdminDirEnv, filepath.Join(file, "run"))
	l = lab.New(t, lab.Config{})
	srv = startServe(t, l, bin)
	assert.Contains(t, srv.next(t), "; no admin socket (mkdir "+file+": not a directory; -admin PATH or XDPNET_RUNDIR=DIR gives one)")
	out = []byte(l.Peer.Run(t, "ping", "-c", "1", "-W", "2", l.StackAddr.String()))
	assert.Contains(t, string(out), "1 received", "it serves")
}
