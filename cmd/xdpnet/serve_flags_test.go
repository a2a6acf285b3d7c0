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

	"github.com/xdpnet/xdpnet/xdp/steer"
)

func TestParseServe(t *testing.T) {
	c, err := parseServe([]string{"-iface", "eth1", "-addr", "198.18.0.1/24", "-gw", "198.18.0.254", "-queues", "2", "-xdp-mode", "generic", "-http", ":80"})
	require.NoError(t, err)
	assert.Equal(t, serveConfig{
		iface: "eth1", addr: netip.MustParsePrefix("198.18.0.1/24"), gateway: netip.MustParseAddr("198.18.0.254"),
		queues: 2, mode: steer.Generic, http: ":80",
	}, c)

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
		{[]string{"-bogus"}, "flag provided but not defined"},
	} {
		_, err := parseServe(bad.args)
		require.Error(t, err, "%v", bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "a command-line mistake exits 2: %v", bad.args)
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
}
