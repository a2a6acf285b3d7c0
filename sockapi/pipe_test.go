package sockapi_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

var (
	addrA = netip.MustParseAddr("198.18.0.2")
	addrB = netip.MustParseAddr("198.18.0.3")
)

// pipeStacks are two stacks joined by an in-memory pipe, each with its
// pollers on their own goroutines in real time: everything but the NIC.
func pipeStacks(t testing.TB) (a, b *sockapi.Stack) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	var err error
	a, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24)}, la)
	require.NoError(t, err)
	b, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	return a, b
}

// TestNettestConnPipe runs x/net's conformance suite for net.Conn
// (deadlines, close semantics, concurrent reads and writes) on xdpnet
// connections between two stacks over the pipe.
func TestNettestConnPipe(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		c1, err = a.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		stop = func() {
			c1.Close()
			if c2 != nil {
				c2.Close()
			}
		}
		return c1, c2, stop, nil
	})
}

// TestStackFailed: when a poller's link breaks, Failed is closed and Err
// says why, so a server can stop instead of serving nothing.
func TestStackFailed(t *testing.T) {
	la, _ := nic.NewPipe(nic.PipeConfig{})
	s, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24)}, la)
	require.NoError(t, err)
	require.NoError(t, s.Err())
	la.Close()
	select {
	case <-s.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("a broken link did not fail the stack")
	}
	require.ErrorIs(t, s.Err(), nic.ErrClosed)
	require.ErrorIs(t, s.Close(), nic.ErrClosed, "Close reports the failure too")
}
