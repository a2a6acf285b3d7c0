package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// commandIn is the bench command with args, run as a process of its own
// inside h's namespace.
func commandIn(t *testing.T, ctx context.Context, h *lab.Host, args ...string) *exec.Cmd {
	js, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := h.Command(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), commandEnv+"="+string(js))
	return cmd
}

// startServe starts bench -serve in l's Peer namespace, waits until it
// listens, and returns it and its control address; the test's end stops
// it (SIGTERM) and checks that it exited 0.
func startServe(t *testing.T, l *lab.Lab) (*exec.Cmd, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the test's cleanups, not its body, end it
	cmd := commandIn(t, ctx, l.Peer, "-serve")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "bench -serve: %s", stderr.String())
	require.Contains(t, line, "bench: serving clients on ")
	t.Cleanup(func() {
		defer cancel()
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		assert.NoError(t, cmd.Wait(), "bench -serve: %s", stderr.String())
	})
	return cmd, netip.AddrPortFrom(l.Peer.Addr.Addr(), servePort).String()
}

// TestTwoHostsLab runs the two halves of a two-host run as two
// processes in the lab's two namespaces, exactly two hosts: bench -serve
// on Peer, the driver on Local's link. Every selected cell must have a
// number, both must exit 0, and the serve side must have no client left.
func TestTwoHostsLab(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := lab.New(t, lab.Config{Mode: lab.Native})
	serve, peer := startServe(t, l)

	js := t.TempDir() + "/bench.json"
	driver := commandIn(t, ctx, l.Local, "-iface", l.Local.Link, "-addr", netip.PrefixFrom(l.StackAddr, 24).String(), "-peer", l.Peer.Addr.Addr().String(),
		"-quick", "-time", "500ms", "-only", "tcp-rr-1$,tcp-send-1,udp-rr-64$,idle", "-json", js)
	var stderr bytes.Buffer
	driver.Stderr = &stderr
	out, err := driver.Output()
	require.NoError(t, err, "%s\n%s", out, stderr.String())
	assert.Contains(t, string(out), "- hosts: two hosts: peer "+peer+" runs the clients; gvisor and kernel-offloads left out")
	assert.NotContains(t, string(out), "failed:")

	bad, err := checkFile(js)
	require.NoError(t, err)
	assert.Empty(t, bad)
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	var rep runReport
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, []string{"kernel", "kernel-no-xdp", "xdpnet", "xdpnet-inline"}, rep.Systems)
	assert.Equal(t, peer, rep.Machine.Peer)
	assert.NotEmpty(t, rep.Machine.KernelSocketCC)
	for _, r := range rep.Rows {
		if r.Metric == cpuClient {
			for _, sys := range rep.Systems {
				if r.Cells[sys].NotApplicable {
					continue
				}
				if assert.NotNil(t, r.Cells[sys].Median, "%s on %s", r.Workload, sys) {
					assert.Positive(t, *r.Cells[sys].Median, "%s on %s: the remote client's CPU time", r.Workload, sys)
				}
			}
		}
	}
	assert.Empty(t, clientsOf(serve.Process.Pid), "client processes outlived the run")
}

// TestTwoHostsDriverDies kills the driver (SIGKILL) while a remote client
// runs: the serve side must kill the client when the control connection
// ends, and go on serving.
func TestTwoHostsDriverDies(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := lab.New(t, lab.Config{Mode: lab.Native})
	serve, _ := startServe(t, l)
	driver := commandIn(t, ctx, l.Local, "-iface", l.Local.Link, "-addr", netip.PrefixFrom(l.StackAddr, 24).String(), "-peer", l.Peer.Addr.Addr().String(),
		"-only", "tcp-rr-1$", "-skip", "kernel-no-xdp,xdpnet", "-count", "1", "-time", "20s")
	stdout, err := driver.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, driver.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "run  tcp-rr-1") {
	}
	var clients []int
	for t0 := time.Now(); len(clients) == 0; clients = clientsOf(serve.Process.Pid) {
		require.Less(t, time.Since(t0), 30*time.Second, "no client process started")
		time.Sleep(10 * time.Millisecond) // polling for the client process
	}
	require.NoError(t, driver.Process.Kill())
	driver.Wait()
	for _, pid := range clients {
		for t0 := time.Now(); ; time.Sleep(10 * time.Millisecond) { // polling for its end
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
				break
			}
			require.Less(t, time.Since(t0), 10*time.Second, "client %d outlived its driver", pid)
		}
	}
	// and it still answers
	err = l.Local.Do(func() error {
		_, err := remoteRunner{netip.AddrPortFrom(l.Peer.Addr.Addr(), servePort).String()}.hello(ctx)
		return err
	})
	assert.NoError(t, err)
}

// TestServeBadRequests: bad requests get an error status, never a crash,
// and the serve side goes on answering.
func TestServeBadRequests(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := lab.New(t, lab.Config{Mode: lab.Native})
	_, peer := startServe(t, l)
	for _, tc := range []struct{ req, want string }{
		{"not json\n", "bad request"},
		{`{"client":{"Mode":"rr","Server":"198.18.0.1:7","Via":"xdpnet:eth0"}}` + "\n", `-serve runs "kernel" clients only`},
		{`{"client":{"Mode":"rr","Server":"example.com:7","Via":"kernel"}}` + "\n", "bad request: server"},
		{`{"client":{"Mode":"rr","Server":"198.18.0.1:7","Via":"kernel","Par":100000}}` + "\n", "want N >= 0, Par <= 64"},
		{`{"client":{"Mode":"nope","Server":"198.18.0.1:7","Via":"kernel"}}` + "\n", `unknown mode "nope"`},
		{`{"hello":true}` + "\n", "unknown field"},
		{strings.Repeat("x", maxRequest), "want one request line of at most"},
	} {
		var c net.Conn
		err := l.Local.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", peer, time.Second)
			return err
		})
		require.NoError(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte(tc.req))
		require.NoError(t, err)
		reply, err := io.ReadAll(c)
		c.Close()
		require.NoError(t, err, "%.40q", tc.req)
		rest, ok := strings.CutPrefix(string(reply), statusPrefix)
		require.True(t, ok, "%q", reply)
		var st serveStatus
		require.NoError(t, json.Unmarshal([]byte(rest), &st), "%q", reply)
		assert.Contains(t, st.Error, tc.want, "%.40q", tc.req)
	}
	err := l.Local.Do(func() error {
		_, err := remoteRunner{peer}.hello(ctx)
		return err
	})
	assert.NoError(t, err)
}

// runBad runs cmd and checks a bad-input exit: code want, and exactly one
// line on stderr holding each of says; it returns the line.
func runBad(t *testing.T, cmd *exec.Cmd, want int, says ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s\n%s", stdout.String(), stderr.String())
	assert.Equal(t, want, exit.ExitCode(), "%s", stderr.String())
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
	for _, s := range says {
		assert.Contains(t, stderr.String(), s)
	}
	if pid := cmd.Process.Pid; pid > 0 {
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			assert.NotContains(t, e.Name(), "xdpnet-lab-"+strconv.Itoa(pid)+"-", "the command left a namespace")
		}
	}
	return stderr.String()
}

// requireNoXDP checks that no XDP program is attached to h's link.
func requireNoXDP(t *testing.T, h *lab.Host, link string) {
	t.Helper()
	out, err := h.Output("ip", "-d", "link", "show", "dev", link)
	require.NoError(t, err)
	assert.NotContains(t, out, "prog/xdp", "an XDP program outlived the command: %s", out)
}

// TestTwoHostsBadFlags: two-host flags that do not go together are one
// line and exit 2.
func TestTwoHostsBadFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"-iface", "eth1"},
		{"-peer", "198.18.0.1"},
		{"-iface", "eth1", "-addr", "198.18.0.2/24"},
		{"-iface", "eth1", "-peer", "198.18.0.1"},
		{"-iface", "eth1", "-addr", "198.18.0.2", "-peer", "198.18.0.1"},
		{"-serve", "-iface", "eth1"},
		{"-listen", ":1"},
	} {
		runBad(t, command(t, ctx, args...), exitUsage, "bench: ")
	}
}

// TestTwoHostsPeerDoesNotAnswer: a -peer with no bench -serve is one line
// naming it, within a few seconds, exit 3, and nothing left on -iface.
func TestTwoHostsPeerDoesNotAnswer(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := lab.New(t, lab.Config{Mode: lab.Native})
	t0 := time.Now()
	runBad(t, commandIn(t, ctx, l.Local, "-iface", l.Local.Link, "-addr", "198.18.0.2/24", "-peer", "198.18.0.9"), exitNoLab,
		"peer 198.18.0.9:"+strconv.Itoa(servePort)+" does not answer")
	assert.Less(t, time.Since(t0), 10*time.Second)
	requireNoXDP(t, l.Local, l.Local.Link)
}

// TestTwoHostsBadInterface: a missing -iface, and one without AF_XDP
// (loopback: no native XDP), are one line and exit 3, with nothing left
// attached.
func TestTwoHostsBadInterface(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runBad(t, command(t, ctx, "-iface", "xdpnet-none", "-addr", "198.18.0.2/24", "-peer", "198.18.0.1"), exitNoLab, "interface xdpnet-none")

	l := lab.New(t, lab.Config{Mode: lab.Native})
	_, peer := startServe(t, l)
	runBad(t, commandIn(t, ctx, l.Local, "-iface", "lo", "-addr", "127.0.0.2/8", "-peer", peer), exitNoLab, "cannot start kernel", "attach to lo")
	requireNoXDP(t, l.Local, "lo")
}

// TestCommandNotRoot runs the command as nobody (uid 65534): in the lab,
// with two hosts and as -serve it says it needs root, on one line, and
// exits 3, leaving nothing.
func TestCommandNotRoot(t *testing.T) {
	lab.RequireRoot(t) // to switch to another uid
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// nobody cannot reach the go-test build directory: a copy it can run.
	dir, err := os.MkdirTemp("", "bench-notroot-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	exe := filepath.Join(dir, "bench.test")
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	for _, args := range [][]string{
		{"-only", "tcp-rr-1$"},
		{"-iface", "lo", "-addr", "127.0.0.2/8", "-peer", "127.0.0.1"},
		{"-serve", "-listen", "127.0.0.1:0"},
	} {
		cmd := command(t, ctx, args...)
		cmd.Path, cmd.Dir = exe, dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		runBad(t, cmd, exitNoLab, "needs root")
	}
	requireNoXDP(t, &lab.Host{}, "lo")
}
