package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// pipeConns are a connected pair of xdpnet connections over the pipe.
func pipeConns(t testing.TB) (client, server net.Conn) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return connPair(t, a, ln, ln.Addr().(*net.TCPAddr).AddrPort())
}

// connPair dials dst from s and takes the connection ln accepts; both
// close with the test.
func connPair(t testing.TB, s *sockapi.Stack, ln net.Listener, dst netip.AddrPort) (client, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := s.Dial("tcp", dst.String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// BenchmarkConnPipe moves data through the public API between two stacks
// over the pipe: Write on one goroutine, Read on another, the pollers on
// theirs. Steady state allocates nothing per write, read or packet.
func BenchmarkConnPipe(b *testing.B) {
	client, server := pipeConns(b)
	streamWrites(b, client, server, 16<<10)
}

// streamWrites writes chunk bytes at a time from client for b.Loop while
// a goroutine drains server, and checks every byte written arrived.
func streamWrites(b *testing.B, client, server net.Conn, chunk int) {
	read := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, server)
		read <- n
	}()
	buf := make([]byte, chunk)
	b.SetBytes(int64(chunk))
	b.ReportAllocs()
	written := int64(0)
	for b.Loop() {
		n, err := client.Write(buf)
		if err != nil {
			b.Fatal(err)
		}
		written += int64(n)
	}
	b.StopTimer()
	require.NoError(b, client.(*sockapi.Conn).CloseWrite())
	require.Equal(b, written, <-read)
}

// TestConnSteadyStateAllocs: writes and reads on an established
// connection cost no allocation (the doorbells, kicks and rings are
// allocation-free; deadlines too once set).
func TestConnSteadyStateAllocs(t *testing.T) {
	client, server := pipeConns(t)
	assert.Zero(t, transferAllocs(t, client, server))
}

// transferAllocs is the allocations of one 1000-byte write on client
// read whole on server, once the pair is warm.
func transferAllocs(t *testing.T, client, server net.Conn) float64 {
	wbuf, rbuf := make([]byte, 1000), make([]byte, 1000)
	transfer := func() {
		client.Write(wbuf)
		for n := 0; n < len(wbuf); {
			m, err := server.Read(rbuf)
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
	}
	transfer()
	return testing.AllocsPerRun(200, transfer)
}
