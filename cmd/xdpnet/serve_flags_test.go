package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

func TestParseServe(t *testing.T) {
	c, err := parseServe([]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-gw", "198.18.0.254", "-queues", "2", "-xdp-mode", "generic", "-http", ":80"})
	require.NoError(t, err)
	assert.Equal(t, serveConfig{
		iface: "eth1", addr: netip.MustParsePrefix("198.18.0.1/24"), gateway: netip.MustParseAddr("198.18.0.254"),
		queues: 2, mode: sockapi.XDPGeneric, http: ":80", admin: sockapi.AdminSocketPath("eth1"), adminAuto: true,
	}, c)
	c, err = parseServe([]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-admin", "off"})
	require.NoError(t, err)
	assert.Empty(t, c.admin, "-admin off: none")
	c, err = parseServe([]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-admin", "/tmp/x.sock"})
	require.NoError(t, err)
	assert.Equal(t, "/tmp/x.sock", c.admin)

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-addr", "198.18.0.1/24"}, "-iface is required"},
		{[]string{"-iface", "eth1"}, "-addr is required"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1"}, `-addr "198.18.0.1": want an IPv4 address with a prefix length`},
		{[]string{"-iface", "eth1", "-addr", "2001:db8::1/64"}, "want an IPv4 address"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-gw", "198.19.0.1"}, "is not another address on 198.18.0.0/24"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-gw", "nope"}, `-gw "nope"`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-queues", "0"}, "want 1 to 64"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-xdp-mode", "hw"}, "want auto, native or generic"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "extra"}, `unexpected argument "extra"`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-http", "80"}, `-http "80": want [host]:port`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-http", ":99999"}, `-http ":99999": port "99999": want a number from 1 to 65535`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-http", ":0"}, `port "0": want a number from 1 to 65535`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-http", ":http"}, `port "http": want a number`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-http", "198.18.0.9:80"}, `host "198.18.0.9": want the stack's address 198.18.0.1, or none`},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.0/24"}, "-addr 198.18.0.0/24: the network address of 198.18.0.0/24, no host's; hosts are 198.18.0.1 to 198.18.0.254"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.255/24"}, "-addr 198.18.0.255/24: the broadcast address of 198.18.0.0/24"},
		{[]string{"-iface", "eth1", "-addr", "198.18.1.255/23"}, "the broadcast address of 198.18.0.0/23"},
		{[]string{"-iface", "eth1", "-addr", "224.0.0.1/24"}, "not a unicast address"},
		{[]string{"-iface", "eth1", "-addr", "0.0.0.0/8"}, "not a unicast address"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-gw", "198.18.0.255"}, "-gw 198.18.0.255: the broadcast address"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-admin", ""}, "-admin: want a path, auto or off"},
	} {
		_, err := parseServe(bad.args)
		require.Error(t, err, "%v", bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "a command-line mistake exits 2: %v", bad.args)
	}
}

// TestParseServeHostAddrs: /31 and /32 subnets have no network or
// broadcast address (RFC 3021), and -http takes the stack's own address.
func TestParseServeHostAddrs(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "198.18.0.0/31"},
		{"-addr", "198.18.0.1/31"},
		{"-addr", "198.18.0.0/32"},
		{"-addr", "198.18.0.254/24", "-gw", "198.18.0.1"},
		{"-addr", "198.18.0.2/24", "-http", "198.18.0.2:8080"},
		{"-addr", "198.18.0.2/24", "-http", "0.0.0.0:65535"},
	} {
		_, err := parseServe(append([]string{"-iface", "eth1"}, args...))
		assert.NoError(t, err, "%v", args)
	}
}

func TestRunDispatch(t *testing.T) {
	assert.ErrorContains(t, run([]string{"frobnicate"}, os.Stdout, os.Stderr), `unknown command "frobnicate"`)
	assert.Equal(t, 2, exitCode(run(nil, os.Stdout, os.Stderr)))
	assert.Equal(t, 1, exitCode(errors.New("runtime failure")))
}

func TestExplain(t *testing.T) {
	assert.EqualError(t, explain("nope0", fmt.Errorf("open: route ip+net: no such network interface")),
		`interface "nope0" not found (see `+"`ip link`)")
	err := explain("eth1", fmt.Errorf("attach: %w", steer.ErrForeignProgram))
	assert.ErrorContains(t, err, "pass -replace")
	assert.ErrorIs(t, err, steer.ErrForeignProgram)
	assert.ErrorContains(t, explain("eth1", fmt.Errorf("socket: %w", syscall.EPERM)), "permission denied")

	held := fmt.Errorf("open: %w", &steer.LinkHeldError{Interface: "eth1", ProgID: 7, Holders: []steer.Holder{{PID: 42, Command: "xdpnet"}}})
	err = explain("eth1", held)
	assert.EqualError(t, err, "eth1 is in use by another process: open: eth1 runs XDP program id 7 through a bpf_link that process 42 (xdpnet) holds; "+
		"only its holder can detach it, so stop that process (-replace cannot take over a bpf_link)")
	assert.ErrorIs(t, err, steer.ErrForeignProgram)
	assert.NotContains(t, err.Error(), "pass -replace")
}

// TestMissingCaps reads the effective set as /proc/PID/status prints it;
// CAP_SYS_ADMIN stands for CAP_BPF and CAP_NET_ADMIN, not CAP_NET_RAW.
func TestMissingCaps(t *testing.T) {
	names := func(status string) []string {
		var n []string
		for _, c := range missingCaps(status) {
			n = append(n, c.name)
		}
		return n
	}
	const all = 1<<13 | 1<<39 | 1<<12
	for _, tc := range []struct {
		eff  uint64
		want []string
	}{
		{all, nil},
		{0x000001ffffffffff, nil}, // root
		{all &^ (1 << 13), []string{"CAP_NET_RAW"}},
		{all &^ (1 << 39), []string{"CAP_BPF"}},
		{all &^ (1 << 12), []string{"CAP_NET_ADMIN"}},
		{1<<13 | 1<<21, nil},
		{1 << 21, []string{"CAP_NET_RAW"}},
		{0, []string{"CAP_NET_RAW", "CAP_BPF", "CAP_NET_ADMIN"}},
	} {
		status := fmt.Sprintf("Name:\txdpnet\nCapInh:\t0000000000000000\nCapPrm:\t%016x\nCapEff:\t%016x\n", tc.eff, tc.eff)
		assert.Equal(t, tc.want, names(status), "CapEff %x", tc.eff)
	}
	err := permissionError(missingCaps("CapEff:\t0000008000001000\n"), syscall.EPERM)
	assert.EqualError(t, err, "permission denied: missing CAP_NET_RAW (for AF_XDP sockets); "+
		"xdpnet needs CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN and CAP_IPC_LOCK, or root: operation not permitted")
}
