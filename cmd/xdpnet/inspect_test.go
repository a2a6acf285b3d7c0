package main

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

func TestParseSockets(t *testing.T) {
	c, err := parseSockets([]string{"-t", "-l", "-state", "ESTABLISHED,time-wait,fin-wait-2,estab", "-port", "80", "-i", "-json", "-pid", "42"})
	require.NoError(t, err)
	assert.Equal(t, socketsConfig{
		target: target{pid: 42, json: true}, listening: true, tcp: true, info: true, port: 80,
		states: []sockapi.TCPState{sockapi.TCPEstablished, sockapi.TCPTimeWait, sockapi.TCPFinWait2, sockapi.TCPEstablished},
	}, c)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-state", "WAITING"}, `-state "WAITING": want a TCP state`},
		{[]string{"-port", "70000"}, "-port 70000: want 1 to 65535"},
		{[]string{"-socket", "/x", "-pid", "3"}, "-socket picks the stack alone"},
		{[]string{"-pid", "-1"}, "-pid -1: want a process ID"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseSockets(bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "%v", bad.args)
	}
}

func TestParseCounters(t *testing.T) {
	c, err := parseCounters([]string{"-a", "-d", "0.5", "-n", "3", "-iface", "eth1"})
	require.NoError(t, err)
	assert.Equal(t, countersConfig{target: target{iface: "eth1"}, all: true, interval: 500e6, count: 3}, c)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-d", "-1"}, "-d -1: want 0.01 to 86400 seconds"},
		{[]string{"-d", "0.001"}, "want 0.01 to 86400 seconds"},
		{[]string{"-n", "3"}, "-n 3: want a positive count, with -d"},
		{[]string{"-d", "1", "-n", "-2"}, "-n -2"},
	} {
		_, err := parseCounters(bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "%v", bad.args)
	}
}

// TestSocketsFilter: -l keeps listeners and unconnected UDP sockets,
// -t and -u a protocol, -state and -port what they name.
func TestSocketsFilter(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	socks := []sockapi.Socket{
		{Proto: "tcp", Local: ap("0.0.0.0:80"), State: sockapi.TCPListen},
		{Proto: "tcp", Local: ap("198.18.0.2:80"), Remote: ap("198.18.0.3:5000"), State: sockapi.TCPEstablished},
		{Proto: "tcp", Local: ap("198.18.0.2:81"), Remote: ap("198.18.0.3:5001"), State: sockapi.TCPTimeWait},
		{Proto: "udp", Local: ap("0.0.0.0:53"), State: sockapi.TCPClose},
		{Proto: "udp", Local: ap("198.18.0.2:4000"), Remote: ap("198.18.0.3:53"), State: sockapi.TCPEstablished},
	}
	kept := func(args ...string) (idx []int) {
		c, err := parseSockets(args)
		require.NoError(t, err)
		for i, s := range socks {
			if c.keep(s) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4}, kept())
	assert.Equal(t, []int{0, 3}, kept("-l"))
	assert.Equal(t, []int{0, 1, 2}, kept("-t"))
	assert.Equal(t, []int{3, 4}, kept("-u"))
	assert.Equal(t, []int{0, 1, 2, 3, 4}, kept("-t", "-u"))
	assert.Equal(t, []int{1, 4}, kept("-state", "established"))
	assert.Equal(t, []int{2}, kept("-t", "-state", "TIME_WAIT"))
	assert.Equal(t, []int{0, 1}, kept("-port", "80"))
	assert.Equal(t, []int{4}, kept("-port", "53", "-state", "estab"))
	assert.Equal(t, []int{3, 4}, kept("-port", "53"))
}
