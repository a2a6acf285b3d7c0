package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// failServe runs `xdpnet serve` in l's Local namespace with args after
// -iface and -addr, through prefix (setpriv ...) if given, and returns its
// one line of output; it fails t unless serve exits with status 1.
func failServe(t *testing.T, l *lab.Lab, prefix []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append(prefix, bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24"), args...)
	out, err := l.Local.Command(ctx, argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "output: %s", out)
	assert.Equal(t, 1, ee.ExitCode(), "output: %s", out)
	msg := strings.TrimSpace(string(out))
	assert.NotContains(t, msg, "\n", "one line")
	return msg
}

// TestServeCapabilities runs serve as user nobody with exactly the
// capabilities the README lists, and then with each one left out: all
// four serve; without one, serve says which one is missing and what needs
// it. CAP_SYS_ADMIN stands for CAP_BPF and CAP_NET_ADMIN.
func TestServeCapabilities(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	require.NoError(t, err, "setpriv (util-linux) runs the binary as nobody with chosen capabilities")
	prlimit, err := exec.LookPath("prlimit")
	require.NoError(t, err, "prlimit (util-linux) sets RLIMIT_MEMLOCK")
	bin := buildBinary(t)
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o755)) // nobody runs it
	l := lab.New(t, lab.Config{})
	as := func(caps ...string) []string {
		set := "-all"
		for _, c := range caps {
			set += ",+" + c
		}
		// An 8 MiB RLIMIT_MEMLOCK (the usual default) holds less than the
		// 16 MiB UMEM, so that only CAP_IPC_LOCK lets it be locked.
		return []string{prlimit, "--memlock=8388608:8388608", "--",
			setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=" + set, "--ambient-caps=" + set, "--"}
	}

	for _, caps := range [][]string{{"net_raw", "bpf", "net_admin", "ipc_lock"}, {"net_raw", "sys_admin", "ipc_lock"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		argv := append(as(caps...), bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24")
		cmd := l.Local.Command(ctx, argv[0], argv[1:]...)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		line := make([]byte, 200)
		n, _ := out.Read(line)
		assert.Contains(t, string(line[:n]), "xdpnet: serving", "with %v; stderr: %s", caps, &stderr)
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	}

	for _, tc := range []struct {
		drop string
		want string
	}{
		{"net_raw", "permission denied: missing CAP_NET_RAW (for AF_XDP sockets); xdpnet needs CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN and CAP_IPC_LOCK, or root: "},
		{"bpf", "permission denied: missing CAP_BPF (for BPF maps and programs)"},
		{"net_admin", "permission denied: missing CAP_NET_ADMIN (for the XSKMAP and the XDP program)"},
		{"ipc_lock", "exceeds RLIMIT_MEMLOCK (8192 KiB); grant CAP_IPC_LOCK or raise the limit (ulimit -l, LimitMEMLOCK=): no buffer space available"},
	} {
		t.Run("without "+tc.drop, func(t *testing.T) {
			var caps []string
			for _, c := range []string{"net_raw", "bpf", "net_admin", "ipc_lock"} {
				if c != tc.drop {
					caps = append(caps, c)
				}
			}
			msg := failServe(t, l, as(caps...), bin)
			assert.Contains(t, msg, tc.want)
			assert.False(t, xdpAttached(t, l.Local))
			assert.NotContains(t, msg, "MEMLOCK may be too low", "cilium/ebpf's guess, wrong on Linux 5.11 and later")
		})
	}
}

// TestServeQueuesBeyondNIC: -queues 2 on a NIC with one queue says so
// rather than the bind's bare EINVAL.
func TestServeQueuesBeyondNIC(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	msg := failServe(t, l, nil, bin, "-queues", "2")
	assert.False(t, xdpAttached(t, l.Local))
	assert.Contains(t, msg, fmt.Sprintf("2 queues asked for, but %s has 1 (see ethtool -l %s)", l.Local.Link, l.Local.Link))
	assert.NotContains(t, msg, "invalid argument")
}

// TestServeSecondWithReplace: a second serve on an interface the first
// holds, with -replace or without, is told that another process (by PID)
// holds it and that -replace cannot take it over, never to pass -replace.
func TestServeSecondWithReplace(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	first := startServe(t, l, bin)
	assert.Contains(t, first.next(t), "xdpnet: serving")
	for _, args := range [][]string{{"-replace"}, nil} {
		msg := failServe(t, l, nil, bin, args...)
		assert.Contains(t, msg, l.Local.Link+" is in use by another process", "%v", args)
		assert.Contains(t, msg, fmt.Sprintf("through a bpf_link that process %d (xdpnet) holds", first.cmd.Process.Pid), "%v", args)
		assert.Contains(t, msg, "-replace cannot take over a bpf_link", "%v", args)
		assert.NotContains(t, msg, "pass -replace", "%v", args)
	}
}
