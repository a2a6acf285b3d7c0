package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

var (
	pipeA = netip.MustParsePrefix("198.18.0.2/24")
	pipeB = netip.MustParsePrefix("198.18.0.3/24")
)

// pipeStacks are two stacks on an in-memory pipe, a with its admin
// socket at adminPath, for the subcommands' tests without a lab.
func pipeStacks(t *testing.T, adminPath string) (a, b *sockapi.Stack) {
	t.Helper()
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	a, err := sockapi.New(sockapi.Config{Addr: pipeA, AdminSocket: adminPath}, la)
	require.NoError(t, err)
	b, err = sockapi.New(sockapi.Config{Addr: pipeB}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	return a, b
}

// runCmd runs xdpnet's command line in this process.
func runCmd(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), err
}

// adminDir points the admin socket directory of this process at a new
// one, for tests of discovery.
func adminDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "run")
	t.Setenv(sockapi.AdminDirEnv, dir)
	return dir
}

// TestInspectDiscovery: with no stack, sockets says so in one line;
// with one, it needs no flag; with several, it names them and -iface or
// -socket picks one; a socket file a dead process left is no stack.
func TestInspectDiscovery(t *testing.T) {
	dir := adminDir(t)
	_, err := runCmd("sockets")
	require.EqualError(t, err, "no xdpnet stack found in "+dir+" (is `xdpnet serve` running?)")
	assert.Equal(t, 1, exitCode(err))

	a, _ := pipeStacks(t, sockapi.AdminSocketPath("xa"))
	ln, err := a.Listen("tcp", ":7000")
	require.NoError(t, err)
	defer ln.Close()
	out, err := runCmd("sockets")
	require.NoError(t, err)
	assert.Contains(t, out, "0.0.0.0:7000")

	// A process that died with its socket: found by name, not taken.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := filepath.Join(dir, fmt.Sprintf("xs.%d.sock", dead.Process.Pid))
	leaveStaleSocket(t, stale)
	out, err = runCmd("sockets", "-t")
	require.NoError(t, err, "the dead process's socket is skipped")
	assert.Contains(t, out, "0.0.0.0:7000")
	_, err = runCmd("sockets", "-socket", stale)
	require.EqualError(t, err, "admin socket "+stale+": no stack listens on it (a stale socket of a stack that exited)")
	assert.Equal(t, 1, exitCode(err))

	pipeStacks(t, sockapi.AdminSocketPath("xb"))
	pid := os.Getpid()
	_, err = runCmd("arp")
	require.EqualError(t, err, fmt.Sprintf("several xdpnet stacks in %s: xa (pid %d), xb (pid %d); pick one with -pid, -iface or -socket", dir, pid, pid))
	assert.Equal(t, 1, exitCode(err))
	_, err = runCmd("counters", "-pid", fmt.Sprint(pid))
	assert.ErrorContains(t, err, "several xdpnet stacks in pid")
	out, err = runCmd("sockets", "-iface", "xa")
	require.NoError(t, err)
	assert.Contains(t, out, "0.0.0.0:7000")
	out, err = runCmd("sockets", "-socket", sockapi.AdminSocketPath("xb"))
	require.NoError(t, err)
	assert.NotContains(t, out, "0.0.0.0:7000", "b's stack has no listener")
	_, err = runCmd("sockets", "-iface", "xc")
	require.EqualError(t, err, "no xdpnet stack found on xc in "+dir+" (is `xdpnet serve` running?)")
	_, err = runCmd("sockets", "-socket", filepath.Join(dir, "none.sock"))
	assert.ErrorContains(t, err, "no such socket (is the stack running?)")
}

// leaveStaleSocket leaves at path what a process killed while it
// listened leaves: a socket file nobody listens on.
func leaveStaleSocket(t *testing.T, path string) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	t.Cleanup(func() { os.Remove(path) })
}

// TestInspectOutput: what sockets, counters and arp print of a stack
// with a listener and a connection to its neighbour.
func TestInspectOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.sock")
	a, b := pipeStacks(t, path)
	ln, err := b.Listen("tcp", ":7000")
	require.NoError(t, err)
	defer ln.Close()
	al, err := a.Listen("tcp", ":8000")
	require.NoError(t, err)
	defer al.Close()
	c, err := a.Dial("tcp", "198.18.0.3:7000")
	require.NoError(t, err)
	defer c.Close()
	pid := os.Getpid()

	out, err := runCmd("sockets", "-socket", path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^Proto +Local Address +Foreign Address +State +PID +Recv-Q +Send-Q +Queue$`, lines[0])
	assert.Regexp(t, fmt.Sprintf(`^tcp +0\.0\.0\.0:8000 +0\.0\.0\.0:\* +LISTEN +%d +0 +4096 +0$`, pid), lines[1])
	assert.Regexp(t, fmt.Sprintf(`^tcp +%s +198\.18\.0\.3:7000 +ESTABLISHED +%d +0 +0 +0$`, regexp.QuoteMeta(c.LocalAddr().String()), pid), lines[2])

	out, err = runCmd("sockets", "-socket", path, "-i", "-state", "established")
	require.NoError(t, err)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^ +rtt:[0-9.]+/[0-9.]+ rto:200 mss:1448 cwnd:10 bytes_sent:0 .*bytes_acked:0 bytes_received:0 .*retrans:0 .*delivery_rate:\S+ timer:\(keepalive,\d+\.?\d*s\)$`, lines[2])

	out, err = runCmd("sockets", "-socket", path, "-json", "-l")
	require.NoError(t, err)
	var socks []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &socks), out)
	require.Len(t, socks, 1)
	assert.Equal(t, map[string]any{"proto": "tcp", "local": "0.0.0.0:8000", "remote": "", "state": "LISTEN",
		"recv_q": 0.0, "send_q": 4096.0, "queue": 0.0, "pid": float64(pid)}, socks[0])

	out, err = runCmd("counters", "-socket", path)
	require.NoError(t, err)
	assert.Regexp(t, `^#xdpnet 198\.18\.0\.2/24 pid \d+\n`, out)
	assert.Regexp(t, `(?m)^TcpActiveOpens +1$`, out)
	assert.NotRegexp(t, `(?m) 0$`, out, "zeros only with -a")
	out, err = runCmd("counters", "-socket", path, "-a")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^TcpPassiveOpens +0$`, out)

	// -d reports what changed in each interval: no dial, no open.
	out, err = runCmd("counters", "-socket", path, "-json", "-d", "0.05", "-n", "2")
	require.NoError(t, err)
	sc := bufio.NewScanner(strings.NewReader(out))
	reports := 0
	for sc.Scan() {
		var d map[string]int64
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d), sc.Text())
		assert.NotContains(t, d, "TcpActiveOpens", "a delta, not the total")
		reports++
	}
	assert.Equal(t, 2, reports)

	out, err = runCmd("arp", "-socket", path)
	require.NoError(t, err)
	assert.Regexp(t, `^198\.18\.0\.3 dev 198\.18\.0\.2/24 lladdr [0-9a-f:]{17} REACHABLE queue 0\n$`, out)
	out, err = runCmd("arp", "-socket", path, "-json")
	require.NoError(t, err)
	assert.Contains(t, out, `"state": "REACHABLE"`)
	assert.Regexp(t, `"mac": "[0-9a-f:]{17}"`, out)
}

// TestInspectPermissionDenied: a user who is not the stack's cannot
// read its socket (0600), and is told so in one line, exit status 1.
func TestInspectPermissionDenied(t *testing.T) {
	lab.RequireRoot(t) // to run the binary as another user
	bin := buildBinary(t)
	// The other user must reach the binary and the socket's directory.
	for d := filepath.Dir(bin); d != os.TempDir(); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	dir, err := os.MkdirTemp("", "xdpnet-admin-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	path := filepath.Join(dir, "a.sock")
	pipeStacks(t, path)

	cmd := exec.Command(bin, "sockets", "-socket", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Equal(t, "xdpnet: admin socket "+path+": permission denied: it is root's; run as that user or root\n", string(out))
}
