package admin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

func TestParseName(t *testing.T) {
	for name, want := range map[string]Endpoint{
		"eth1.42.sock":     {Interface: "eth1", PID: 42},
		"eth0.100.7.sock":  {Interface: "eth0.100", PID: 7}, // a VLAN's name has a dot
		"xl0a1b.9999.sock": {Interface: "xl0a1b", PID: 9999},
	} {
		got, ok := parseName(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	for _, name := range []string{"eth1.sock", ".42.sock", "eth1.42", "eth1.x.sock", "eth1.-3.sock", "eth1.0.sock"} {
		_, ok := parseName(name)
		assert.False(t, ok, name)
	}
}

// TestFind: Find lists the sockets at their default names of live
// processes, filtered by PID and interface, and skips a dead process's,
// a file that is no socket and other names; no directory is no stack.
func TestFind(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	t.Setenv(sockapi.AdminDirEnv, dir)
	eps, err := Find(0, "")
	require.NoError(t, err)
	assert.Empty(t, eps)
	require.NoError(t, os.Mkdir(dir, 0o700))

	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	pid := os.Getpid()
	for _, name := range []string{fmt.Sprintf("eth1.%d.sock", pid), fmt.Sprintf("eth0.100.%d.sock", pid),
		fmt.Sprintf("eth2.%d.sock", dead.Process.Pid), "other.sock"} {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unix"})
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("eth3.%d.sock", pid)), nil, 0o600))

	eps, err = Find(0, "")
	require.NoError(t, err)
	assert.Equal(t, []Endpoint{
		{Path: filepath.Join(dir, fmt.Sprintf("eth0.100.%d.sock", pid)), Interface: "eth0.100", PID: pid},
		{Path: filepath.Join(dir, fmt.Sprintf("eth1.%d.sock", pid)), Interface: "eth1", PID: pid},
	}, eps)
	eps, err = Find(pid, "eth1")
	require.NoError(t, err)
	assert.Len(t, eps, 1)
	eps, err = Find(dead.Process.Pid, "")
	require.NoError(t, err)
	assert.Empty(t, eps)

	ep, err := Pick(0, "eth0.100")
	require.NoError(t, err)
	assert.Equal(t, "eth0.100", ep.Interface)
	_, err = Pick(0, "")
	assert.ErrorIs(t, err, ErrSeveral)
	_, err = Pick(0, "eth9")
	assert.ErrorIs(t, err, ErrNoStack)
}
