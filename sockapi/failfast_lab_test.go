package sockapi_test

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// kernelDial dials addr with the kernel's stack in the local namespace,
// beside xdpnet on the same link, and says how it ended and how long it
// took.
func kernelDial(t *testing.T, l *lab.Lab, addr string) (time.Duration, error) {
	t.Helper()
	var err error
	start := time.Now()
	require.NoError(t, l.Local.Do(func() error {
		var c net.Conn
		if c, err = net.DialTimeout("tcp4", addr, 30*time.Second); err == nil {
			c.Close()
		}
		return nil
	}))
	return time.Since(start), err
}

// errnoOf is the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	errors.As(err, &e)
	return e
}

// TestDialFailFastLab dials, from xdpnet and from the kernel beside it,
// an on-link address nobody answers ARP for, one off the subnet with no
// gateway, and ports on the kernel
// peer whose netfilter answers with ICMP destination unreachable (host,
// net, port, administratively prohibited): xdpnet must end each dial
// with the kernel's errno, in a time within twice the kernel's (or, for
// the answered dials, at once), with Timeout() false.
func TestDialFailFastLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	peer := l.Peer.Addr.Addr()
	rejects := []struct {
		port int
		with string
	}{{7101, "icmp-host-unreachable"}, {7102, "icmp-net-unreachable"}, {7103, "icmp-port-unreachable"}, {7104, "icmp-admin-prohibited"}}
	for _, r := range rejects {
		l.Peer.Run(t, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(r.port), "-j", "REJECT", "--reject-with", r.with)
	}
	cases := []struct {
		name string
		addr string
	}{{"dead neighbour", "198.18.0.77:80"}, {"off-subnet, no gateway", "198.19.0.1:80"}}
	for _, r := range rejects {
		cases = append(cases, struct{ name, addr string }{r.with, netip.AddrPortFrom(peer, uint16(r.port)).String()})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kt, kerr := kernelDial(t, l, c.addr)
			require.Error(t, kerr, "the kernel's dial")
			start := time.Now()
			_, err := s.Dial("tcp", c.addr)
			xt := time.Since(start)
			t.Logf("%s: kernel %v after %v; xdpnet %v after %v", c.name, kerr, kt.Round(time.Millisecond), err, xt.Round(time.Millisecond))
			require.Error(t, err)
			assert.Equal(t, errnoOf(kerr), errnoOf(err), "the kernel's errno")
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			assert.False(t, oe.Timeout())
			assert.Less(t, xt, 2*kt+500*time.Millisecond, "within twice the kernel's time")
		})
	}
}

// TestDialThroughRouterLab: the kernel peer as the router of both
// xdpnet and the kernel beside it, with routes that answer with ICMP
// (unreachable: host unreachable; prohibit: administratively
// prohibited); a dial through it ends as the kernel's does, at once.
func TestDialThroughRouterLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	peer := l.Peer.Addr.Addr()
	s := labStack(t, l, sockapi.Config{Gateway: peer})
	l.Peer.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.Peer.Run(t, "ip", "route", "add", "unreachable", "198.19.1.0/24")
	l.Peer.Run(t, "ip", "route", "add", "prohibit", "198.19.2.0/24")
	l.Local.Run(t, "ip", "route", "add", "198.19.0.0/16", "via", peer.String())
	for _, addr := range []string{"198.19.1.1:80", "198.19.2.1:80"} {
		t.Run(addr, func(t *testing.T) {
			kt, kerr := kernelDial(t, l, addr)
			require.Error(t, kerr, "the kernel's dial")
			start := time.Now()
			_, err := s.Dial("tcp", addr)
			xt := time.Since(start)
			t.Logf("%s: kernel %v after %v; xdpnet %v after %v", addr, kerr, kt.Round(time.Millisecond), err, xt.Round(time.Millisecond))
			require.Error(t, err)
			assert.Equal(t, errnoOf(kerr), errnoOf(err), "the kernel's errno")
			assert.Less(t, xt, 2*kt+500*time.Millisecond, "within twice the kernel's time")
		})
	}
}
