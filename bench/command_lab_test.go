package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// commandEnv makes this test binary the bench command, with the
// arguments it holds (JSON), for the tests that run the command as a
// process of its own.
const commandEnv = "XDPNET_BENCH_COMMAND"

// commandMain runs the command if commandEnv is set, and exits; it
// returns at once otherwise.
func commandMain() {
	js := os.Getenv(commandEnv)
	if js == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(js), &args); err != nil {
		panic(err)
	}
	os.Exit(benchMain(args, os.Stdout, os.Stderr))
}

// command is the bench command with args, run as a process of its own.
func command(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	js, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), commandEnv+"="+string(js))
	return cmd
}

var labLink = regexp.MustCompile(`link: xl([0-9a-f]{12}) `)

// requireLabGone checks that the lab the command's output names has no
// namespace left.
func requireLabGone(t *testing.T, out string) {
	t.Helper()
	id := labLink.FindStringSubmatch(out)
	require.Len(t, id, 2, "the header names the lab's link:\n%s", out)
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), id[1], "the lab's namespace outlived the command")
	}
}

// TestCommandWarnsOfBusyMachine: with another process (this test)
// spinning on a CPU for the whole run, the cell says so (a warning line, under the table
// and in the JSON) and its cpu-other-s row counts that process's time.
func TestCommandWarnsOfBusyMachine(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The other process is this test's: a goroutine spinning until the
	// command ends (a shell loop under timeout would outlive a killed
	// timeout).
	var stop atomic.Bool
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for !stop.Load() {
		}
	}()
	defer func() {
		stop.Store(true)
		<-spun
	}()
	js := t.TempDir() + "/bench.json"
	cmd := command(t, ctx, "-only", "tcp-rr-1$", "-skip", "kernel,gvisor,inline", "-count", "1", "-time", "1s", "-json", js)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `(?m)^warning: other processes used \d+ % of a CPU during tcp-rr-1 on xdpnet`, string(out))
	assert.Regexp(t, `(?m)^- warning: other processes used`, string(out))
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	var rep runReport
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Len(t, rep.Warnings, 1)
	for _, r := range rep.Rows {
		if r.Metric == cpuOther {
			require.NotNil(t, r.Cells["xdpnet"].Median)
			assert.Greater(t, *r.Cells["xdpnet"].Median, 0.5, "the spinning process's second")
		}
	}
}

// TestCommandLab runs the command on three workloads for a short time
// and checks its table, its JSON (-check's verdict on it too), its plots
// and that its lab is gone.
func TestCommandLab(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, plots := t.TempDir()+"/bench.json", t.TempDir()+"/plots"
	cmd := command(t, ctx, "-only", "tcp-rr-1$,udp-rr-64$,idle", "-skip", "kernel-no-xdp", "-count", "1", "-time", "300ms", "-json", js, "-plot", plots)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s\n%s", out, stderr.String())
	requireLabGone(t, string(out))

	assert.Contains(t, string(out), "| workload | metric | better | kernel | xdpnet | xdpnet-inline | gvisor | xdpnet ÷ kernel | xdpnet ÷ gvisor |\n")
	for _, row := range []string{"| tcp-rr-1 | trans/s | ↑ higher | ", "| tcp-rr-1 | p99.9-µs | ↓ lower | ", "| udp-rr-64 | trans/s | ↑ higher | ",
		"| idle | cpu-% | ↓ lower | ", "| tcp-rr-1 | cpu-client-s | ↓ lower | "} {
		assert.Contains(t, string(out), row)
	}
	assert.NotContains(t, string(out), "failed:")
	assert.NotContains(t, string(out), "tcp-rr-1k")

	b, err := os.ReadFile(js)
	require.NoError(t, err)
	var rep runReport
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, []string{"kernel", "xdpnet", "xdpnet-inline", "gvisor"}, rep.Systems)
	assert.Equal(t, "native", rep.Machine.XDPMode)
	assert.NotEmpty(t, rep.Machine.KernelSocketCC)
	workloads := map[string]bool{}
	for _, r := range rep.Rows {
		workloads[r.Workload] = true
		for _, sys := range rep.Systems {
			c := r.Cells[sys]
			if r.Workload == "udp-rr-64" && sys == "xdpnet-inline" {
				assert.True(t, c.NotApplicable, "the inline services have no UDP: %+v", c)
				continue
			}
			if assert.NotNil(t, c.Median, "%s %s on %s: %+v", r.Workload, r.Metric, sys, c) {
				assert.Len(t, c.Samples, 1)
			}
		}
	}
	assert.Equal(t, map[string]bool{"tcp-rr-1": true, "udp-rr-64": true, "idle": true}, workloads)

	var cdfs []string
	for _, h := range rep.Latency {
		cdfs = append(cdfs, h.Workload+"/"+h.System)
		var n int64
		for _, b := range h.Buckets {
			n += b[1]
		}
		assert.Positive(t, n, "%s on %s", h.Workload, h.System)
	}
	assert.Equal(t, []string{"tcp-rr-1/kernel", "tcp-rr-1/xdpnet", "tcp-rr-1/xdpnet-inline", "tcp-rr-1/gvisor", "udp-rr-64/kernel", "udp-rr-64/xdpnet", "udp-rr-64/gvisor"}, cdfs)
	pngs, err := filepath.Glob(plots + "/*.png")
	require.NoError(t, err)
	assert.Len(t, pngs, 3, "two CDFs and the trans/s bars: %v", pngs)

	var checkOut, checkErr bytes.Buffer
	assert.Equal(t, exitOK, benchMain([]string{"-check", js}, &checkOut, &checkErr), checkErr.String())
}

// clientsOf are the pids of the client processes that pid started (`ip
// netns exec` execs the client, so pid is their parent).
func clientsOf(pid int) []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		stat, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, not ')'.
		_, rest, _ := strings.Cut(string(stat), ") ")
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err != nil || ppid != pid {
			continue
		}
		env, _ := os.ReadFile("/proc/" + p.Name() + "/environ")
		if bytes.Contains(env, []byte(clientEnv+"=")) {
			n, _ := strconv.Atoi(p.Name())
			pids = append(pids, n)
		}
	}
	return pids
}

// TestCommandInterruptedLab sends SIGINT to the command while a cell's
// client runs: it must stop, print what it has, exit 130, and leave
// neither the client nor the lab.
func TestCommandInterruptedLab(t *testing.T) {
	lab.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := command(t, ctx, "-only", "tcp-rr-1$", "-skip", "kernel-no-xdp", "-count", "2", "-time", "20s")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "run  tcp-rr-1") {
			break
		}
	}
	var clients []int
	for t0 := time.Now(); len(clients) == 0; clients = clientsOf(cmd.Process.Pid) {
		require.Less(t, time.Since(t0), 30*time.Second, "no client process started:\n%s\n%s", out.String(), stderr.String())
		time.Sleep(10 * time.Millisecond) // polling for the client process
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s\n%s", out.String(), stderr.String())
	assert.Equal(t, exitInterrupted, exit.ExitCode(), "%s\n%s", out.String(), stderr.String())
	assert.Contains(t, out.String(), "**Interrupted**")
	requireLabGone(t, out.String())
	for _, pid := range clients {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		assert.ErrorIs(t, err, os.ErrNotExist, "client %d outlived the command", pid)
	}
}
