package sockapi_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }

// labStack opens xdpnet on the lab's Local end, with StackAddr/24.
func labStack(t testing.TB, l *lab.Lab, cfg sockapi.Config) *sockapi.Stack {
	t.Helper()
	cfg.Interface, cfg.Addr = l.Local.Link, netip.PrefixFrom(l.StackAddr, 24)
	var s *sockapi.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		s, err = sockapi.Open(cfg)
		return err
	}))
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// kernelListen listens with the kernel's stack in the peer's namespace.
func kernelListen(t testing.TB, l *lab.Lab) net.Listener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, l.Peer.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.Peer.Addr.Addr(), 0).String())
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestNettestConnLab runs x/net's net.Conn conformance suite on
// connections between xdpnet and the Linux kernel over AF_XDP: xdpnet
// dials, the kernel accepts, and the suite drives both ends.
func TestNettestConnLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln := kernelListen(t, l)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				c = nil
			}
			accepted <- c
		}()
		c1, err = s.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		select {
		case c2 = <-accepted:
		case <-time.After(10 * time.Second):
		}
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, net.ErrClosed
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestStackInfoLab: Info describes a stack from Open on the lab's veth
// (two queues, native XDP, which veth runs only in copy mode) and one
// from New on a pipe (no interface, no XDP).
func TestStackInfoLab(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	s := labStack(t, l, sockapi.Config{Queues: 2, XDPMode: sockapi.XDPNative})
	assert.Equal(t, sockapi.StackInfo{
		Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24), Queues: 2, MTU: 1500,
		XDPMode: sockapi.XDPNative, ZeroCopy: false,
	}, s.Info())

	a, _ := pipeStacks(t)
	assert.Equal(t, sockapi.StackInfo{Addr: netip.PrefixFrom(addrA, 24), Queues: 1, MTU: 1500}, a.Info())
}
