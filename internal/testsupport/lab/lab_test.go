package lab_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
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
	"github.com/vishvananda/netlink"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }

// helperEnv marks a re-executed test binary as a helper child; its value
// names the helper scenario.
const helperEnv = "XDPNET_LAB_HELPER"

func requirePing(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Fatalf("install iputils-ping: %v", err)
	}
}

func TestKernelsPingEachOther(t *testing.T) {
	requirePing(t)
	l := lab.New(t, lab.Config{})
	out := l.Peer.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "1", l.Local.Addr.Addr().String())
	assert.Contains(t, out, "3 received")
	out = l.Local.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "1", l.Peer.Addr.Addr().String())
	assert.Contains(t, out, "3 received")
}

func TestStackAddrIsNotOnTheKernel(t *testing.T) {
	requirePing(t)
	l := lab.New(t, lab.Config{})
	assert.True(t, l.Local.Addr.Contains(l.StackAddr), "StackAddr %s must be on Local's subnet %s", l.StackAddr, l.Local.Addr)
	// Nobody answers ARP for StackAddr until xdpnet runs, so ping fails.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := l.Peer.Command(ctx, "ping", "-c", "1", "-W", "1", l.StackAddr.String()).CombinedOutput()
	assert.Error(t, err, "ping to StackAddr answered:\n%s", out)
}

func TestNamesAreUnique(t *testing.T) {
	a := lab.New(t, lab.Config{})
	b := lab.New(t, lab.Config{})
	names := map[string]bool{}
	for _, h := range []*lab.Host{a.Local, a.Peer, b.Local, b.Peer} {
		assert.False(t, names[h.NS], "namespace %s used twice", h.NS)
		assert.False(t, names[h.Link], "link %s used twice", h.Link)
		names[h.NS], names[h.Link] = true, true
		assert.LessOrEqual(t, len(h.Link), 15, "link name %q exceeds IFNAMSIZ", h.Link)
	}
}

func TestCleanupDeletesNamespaces(t *testing.T) {
	var l *lab.Lab
	t.Run("lab", func(t *testing.T) { l = lab.New(t, lab.Config{}) })
	require.NotNil(t, l)
	list := exec.Command("ip", "netns", "list")
	out, err := list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, h := range []*lab.Host{l.Local, l.Peer} {
		assert.NotContains(t, string(out), h.NS)
		assert.NoFileExists(t, filepath.Join("/run/netns", h.NS))
	}
}

// TestCleanupRunsWhenTestFails re-executes this binary as a child whose test
// builds a lab and then fails; the namespaces it printed must be gone after.
func TestCleanupRunsWhenTestFails(t *testing.T) {
	lab.RequireRoot(t)
	out, err := helperCommand(t, "fail").CombinedOutput()
	require.Error(t, err, "the helper test should have failed:\n%s", out)
	names := regexp.MustCompile(`namespaces: (\S+) (\S+)`).FindStringSubmatch(string(out))
	require.Len(t, names, 3, "helper output:\n%s", out)
	for _, ns := range names[1:] {
		assert.NoFileExists(t, filepath.Join("/run/netns", ns))
	}
}

// TestNewSkipsWhenNotRoot runs a copy of this binary as nobody: New must skip
// the test with the reason, not fail it.
func TestNewSkipsWhenNotRoot(t *testing.T) {
	lab.RequireRoot(t)
	// The go build directory is private to root: copy the binary somewhere
	// nobody can execute it.
	dir, err := os.MkdirTemp("", "xdpnet-lab-test")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "lab.test")
	src, err := os.Open(os.Args[0])
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	cmd := helperCommand(t, "new")
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "helper as nobody:\n%s", out)
	assert.Contains(t, string(out), "--- SKIP: TestHelperProcess")
	assert.Contains(t, string(out), "needs root")
}

// TestHelperProcess is not a test: it is the child of the tests above.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		t.Skip("helper child only")
	case "fail":
		l := lab.New(t, lab.Config{})
		t.Logf("namespaces: %s %s", l.Local.NS, l.Peer.NS)
		t.Fatal("failing on purpose: the lab must still be torn down")
	case "new":
		lab.New(t, lab.Config{})
		t.Fatal("lab.New returned for a non-root user")
	case "orphan":
		l := lab.New(t, lab.Config{})
		cmd := l.Peer.Command(context.Background(), "sleep", "300")
		require.NoError(t, cmd.Start())
		fmt.Printf("child: %d\n", cmd.Process.Pid)
		syscall.Kill(os.Getpid(), syscall.SIGKILL) // no cleanup runs
	}
}

// TestCommandDiesWithTheTest: a command a test started in a namespace
// does not outlive a test binary that was killed outright (no cleanup
// ran), so a flood or a capture cannot run on unowned.
func TestCommandDiesWithTheTest(t *testing.T) {
	lab.RequireRoot(t)
	out, _ := helperCommand(t, "orphan").CombinedOutput()
	m := regexp.MustCompile(`child: (\d+)`).FindStringSubmatch(string(out))
	require.Len(t, m, 2, "helper output:\n%s", out)
	pid, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // should the test fail
	gone := func() bool {
		st, err := os.ReadFile("/proc/" + m[1] + "/stat")
		// Gone, or a zombie nobody has reaped yet: not running either way.
		return err != nil || strings.Contains(string(st), ") Z ")
	}
	assert.Eventually(t, gone, 5*time.Second, 10*time.Millisecond, "the helper's sleep %s outlived it", m[1])
	lab.New(t, lab.Config{}) // reaps the namespaces the killed helper left
}

func helperCommand(t *testing.T, scenario string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+scenario)
	return cmd
}

func TestDoRunsInsideTheNamespace(t *testing.T) {
	l := lab.New(t, lab.Config{})
	_, err := netlink.LinkByName(l.Local.Link)
	assert.Error(t, err, "Local's link must not be visible in the test's own namespace")

	err = l.Local.Do(func() error {
		link, err := netlink.LinkByName(l.Local.Link)
		if err != nil {
			return err
		}
		assert.Equal(t, l.Local.Ifindex, link.Attrs().Index)
		assert.Equal(t, l.Local.MAC, link.Attrs().HardwareAddr)
		return nil
	})
	assert.NoError(t, err)

	err = l.Peer.Do(func() error {
		_, err := netlink.LinkByName(l.Local.Link)
		return err
	})
	assert.Error(t, err, "Local's link must not be visible in Peer's namespace")

	_, err = netlink.LinkByName(l.Local.Link)
	assert.Error(t, err, "Do must switch the thread back")
	assert.Panics(t, func() { _ = l.Local.Do(func() error { panic("boom") }) })
}

func TestQueuesAndMTU(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 4, MTU: 3000})
	for _, h := range []*lab.Host{l.Local, l.Peer} {
		require.NoError(t, h.Do(func() error {
			link, err := netlink.LinkByIndex(h.Ifindex)
			if err != nil {
				return err
			}
			a := link.Attrs()
			assert.Equal(t, 4, a.NumRxQueues, "%s rx queues", h.Link)
			assert.Equal(t, 4, a.NumTxQueues, "%s tx queues", h.Link)
			assert.Equal(t, 3000, a.MTU, "%s MTU", h.Link)
			assert.Equal(t, netlink.LinkOperState(netlink.OperUp), a.OperState, "%s state", h.Link)
			return nil
		}))
	}
}

func TestPeerOffloads(t *testing.T) {
	for _, tc := range []struct {
		mode lab.Mode
		off  []string
	}{
		{lab.Native, []string{"tx-checksumming"}},
		{lab.Generic, []string{"tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: tc.mode})
			features := ethtoolFeatures(t, l.Peer)
			for _, f := range tc.off {
				assert.Equal(t, "off", features[f], "peer %s", f)
			}
			// The Local end keeps its defaults: the lab only tunes the peer.
			assert.Equal(t, "on", ethtoolFeatures(t, l.Local)["tx-checksumming"])
		})
	}
}

// ethtoolFeatures parses `ethtool -k` ("name: on [fixed]") into name -> on/off.
func ethtoolFeatures(t *testing.T, h *lab.Host) map[string]string {
	t.Helper()
	features := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(h.Run(t, "ethtool", "-k", h.Link)))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if f := strings.Fields(value); len(f) > 0 {
			features[strings.TrimSpace(name)] = f[0]
		}
	}
	require.NotEmpty(t, features["tx-checksumming"], "no tx-checksumming line in ethtool -k output")
	return features
}

// TestRandomDrop: a drop rule with probability 1 on the peer's INPUT
// loses every ping, Dropped counts them, and the rule is gone with the
// subtest that added it.
func TestRandomDrop(t *testing.T) {
	requirePing(t)
	l := lab.New(t, lab.Config{})
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return l.Local.Command(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "1", l.Peer.Addr.Addr().String()).Run()
	}
	t.Run("drop", func(t *testing.T) {
		l.Peer.RandomDrop(t, "INPUT", 1, "-p", "icmp")
		assert.Error(t, ping(), "pings through a rule that drops all")
		assert.Equal(t, uint64(2), l.Peer.Dropped(t, "INPUT"))
	})
	assert.NoError(t, ping(), "pings once the rule is removed")
	assert.Zero(t, l.Peer.Dropped(t, "INPUT"), "no drop rule left")
}

// TestSetCongestionControl: a kernel socket is set to cubic and to bbr
// and reads back what it was set to; an algorithm the kernel lacks fails.
func TestSetCongestionControl(t *testing.T) {
	l := lab.New(t, lab.Config{})
	var c *net.TCPListener
	require.NoError(t, l.Peer.Do(func() (err error) {
		ln, err := net.Listen("tcp4", l.Peer.Addr.Addr().String()+":0")
		c, _ = ln.(*net.TCPListener)
		return err
	}))
	defer c.Close()
	for _, name := range []string{"cubic", "bbr"} {
		require.NoError(t, lab.SetCongestionControl(c, name))
		got, err := lab.CongestionControl(c)
		require.NoError(t, err)
		assert.Equal(t, name, got)
	}
	assert.Error(t, lab.SetCongestionControl(c, "no-such-cc"))
}

// TestCurrent: inside Local's namespace, Current describes Local's link
// as Local does, and a Host with NS "" runs fn and commands in the
// namespace it is in, without switching.
func TestCurrent(t *testing.T) {
	l := lab.New(t, lab.Config{})
	err := l.Local.Do(func() error {
		h, err := lab.Current(l.Local.Link)
		if err != nil {
			return err
		}
		assert.Equal(t, &lab.Host{Link: l.Local.Link, Ifindex: l.Local.Ifindex, MAC: l.Local.MAC, Addr: l.Local.Addr}, h)
		if _, err := h.Output("ip", "link", "show", "dev", l.Local.Link); err != nil {
			return err
		}
		return h.Do(func() error {
			_, err := netlink.LinkByName(l.Local.Link)
			return err
		})
	})
	require.NoError(t, err)
	_, err = lab.Current("xdpnet-none")
	assert.ErrorContains(t, err, "interface xdpnet-none")
}
