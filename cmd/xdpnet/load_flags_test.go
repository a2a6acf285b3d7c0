package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseLoad: the URL before or after the flags, the defaults, and a
// clear usage error (exit 2) for each mistake.
func TestParseLoad(t *testing.T) {
	stack := []string{"-iface", "eth1", "-addr", "198.18.0.2/24"}
	for _, args := range [][]string{
		append([]string{"http://198.18.0.1/x"}, append(stack, "-c", "100", "-d", "5s", "-rate", "2000")...),
		append(stack, "-c", "100", "-d", "5s", "-rate", "2000", "http://198.18.0.1/x"),
	} {
		c, err := parseLoad(args)
		require.NoError(t, err, "%v", args)
		assert.Equal(t, "eth1", c.iface)
		assert.Equal(t, netip.MustParsePrefix("198.18.0.2/24"), c.addr)
		assert.Equal(t, 100, c.conns)
		assert.Equal(t, 5*time.Second, c.duration)
		assert.Equal(t, 2000.0, c.rate)
		assert.Equal(t, "http://198.18.0.1/x", c.url)
		assert.Equal(t, "198.18.0.1:80", c.hostPort)
		assert.NotNil(t, c.target)
	}
	c, err := parseLoad(append(stack, "tcp://198.18.0.1:7"))
	require.NoError(t, err)
	assert.Equal(t, 10, c.conns, "default connections")
	assert.Equal(t, 10*time.Second, c.duration, "default duration")
	assert.Equal(t, 64, c.size, "default echo size")
	assert.Equal(t, "198.18.0.1:7", c.hostPort)

	for _, bad := range []struct {
		args []string
		want string
	}{
		{stack, "want a URL"},
		{append(stack, "ftp://198.18.0.1/"), "want http://host[:port]/path or tcp://host:port"},
		{append(stack, "tcp://198.18.0.1"), "want tcp://host:port"},
		{append(stack, "http:///x"), "no host"},
		{append(stack, "-c", "0", "http://198.18.0.1/"), "-c 0: want 1 to 100000"},
		{append(stack, "-d", "0s", "http://198.18.0.1/"), "-d 0s: want a positive duration"},
		{append(stack, "-rate", "-5", "http://198.18.0.1/"), "-rate -5"},
		{append(stack, "-timeout", "0s", "http://198.18.0.1/"), "-timeout 0s"},
		{append(stack, "-size", "0", "tcp://198.18.0.1:7"), "echo size 0"},
		{append(stack, "http://198.18.0.1/", "extra"), `unexpected argument "extra"`},
		{[]string{"-addr", "198.18.0.2/24", "http://198.18.0.1/"}, "load: -iface is required"},
		{[]string{"-bogus"}, "flag provided but not defined"},
	} {
		_, err := parseLoad(bad.args)
		require.Error(t, err, "%v", bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "a command-line mistake exits 2: %v", bad.args)
	}
}

// TestParseSrc: -src's ranges and lists, in order, and what it refuses;
// -addr among them is not a secondary address.
func TestParseSrc(t *testing.T) {
	stack := []string{"-iface", "eth1", "-addr", "198.18.0.2/24"}
	c, err := parseLoad(append(stack, "-src", "198.18.0.10-198.18.0.12, 198.18.0.2,198.18.0.40", "tcp://198.18.0.1:7"))
	require.NoError(t, err)
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	assert.Equal(t, addrs("198.18.0.10", "198.18.0.11", "198.18.0.12", "198.18.0.2", "198.18.0.40"), c.src)
	assert.Equal(t, addrs("198.18.0.10", "198.18.0.11", "198.18.0.12", "198.18.0.40"), c.secondary())

	for _, bad := range []struct{ src, want string }{
		{"198.18.1.10", "not a host address of -addr's subnet 198.18.0.0/24"},
		{"198.18.0.255", "not a host address"},
		{"198.18.0.20-198.18.0.10", "A at most B"},
		{"198.18.0.10,198.18.0.10", "198.18.0.10 given twice"},
		{"198.18.0.10-", "want a range A-B"},
		{"host", "want an IPv4 address or a range A-B"},
		{"::1", "want an IPv4 address"},
	} {
		_, err := parseLoad(append(stack, "-src", bad.src, "tcp://198.18.0.1:7"))
		require.Error(t, err, bad.src)
		assert.ErrorContains(t, err, bad.want, bad.src)
		assert.Equal(t, 2, exitCode(err), bad.src)
	}
	_, err = parseLoad([]string{"-iface", "eth1", "-addr", "198.18.0.2/16", "-src", "198.18.1.0-198.18.2.0", "tcp://198.18.0.1:7"})
	assert.ErrorContains(t, err, "more than 255 addresses")
}
