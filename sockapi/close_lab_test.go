package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestStackCloseLeaksNothing: a stack with open connections, a listener,
// a UDP socket and calls blocked on them closes with every call
// returning net.ErrClosed, and leaves no goroutine, descriptor or XDP
// program behind.
func TestStackCloseLeaksNothing(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	kl := kernelListen(t, l)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	var s *sockapi.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24), Queues: 2})
		return err
	}))
	ln, err := s.Listen("tcp", ":7008")
	require.NoError(t, err)
	pc, err := s.ListenPacket("udp", ":5353")
	require.NoError(t, err)
	c, err := s.Dial("tcp", kl.Addr().String())
	require.NoError(t, err)
	kc, err := kl.Accept()
	require.NoError(t, err)

	blocked := make(chan error, 3)
	go func() { _, err := c.Read(make([]byte, 10)); blocked <- err }()
	go func() { _, err := ln.Accept(); blocked <- err }()
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); blocked <- err }()
	// Close must wake calls that are blocked, not only fail later ones.
	waitBlocked(t, "sockapi.(*bell).wait", 2) // Read and ReadFrom
	waitBlocked(t, "sockapi.(*Listener).AcceptTCP", 1)

	require.NoError(t, s.Close())
	for range 3 {
		select {
		case err := <-blocked:
			assert.ErrorIs(t, err, net.ErrClosed, "a blocked call returns net.ErrClosed")
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return after Stack.Close")
		}
	}
	// The kernel hears the end of the connection.
	kc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(kc)
	assert.NoError(t, err, "the kernel reads a FIN")
	kc.Close()

	// (Not require.Eventually: it runs the condition on goroutines of
	// its own.)
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines, "goroutines after Close")
	// A leaked descriptor is one open now that was not before: sockets,
	// BPF objects and mappings name a unique inode, so a reused number
	// does not hide one. (Comparing counts failed once in CI with fewer
	// descriptors after than before: something the test did not open
	// closed in between, and the count cannot tell which.)
	for fd, target := range openFDs(t) {
		if fds[fd] != target {
			t.Errorf("descriptor %s (%s) was opened and not closed", fd, target)
		}
	}
	require.NoError(t, l.Local.Do(func() error {
		link, err := netlink.LinkByName(l.Local.Link)
		if err != nil {
			return err
		}
		assert.False(t, link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached, "the XDP program is detached")
		return nil
	}))
}

// openFDs maps each of the process's open descriptors to what it refers
// to ("socket:[1234]", "anon_inode:bpf-map", a path).
func openFDs(t *testing.T) map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		// The descriptor ReadDir itself used is gone by now: skip it.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()] = target
		}
	}
	return fds
}

// waitBlocked waits, at most 5 s, until n goroutines are parked in a
// select or channel operation inside fn (a function name as runtime
// stacks print it), and fails the test if they never are: an explicit
// check that calls under test are blocked, rather than a sleep that
// hopes they are.
func waitBlocked(t *testing.T, fn string, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		stacks := string(buf[:runtime.Stack(buf, true)])
		got := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if (strings.Contains(header, "[select") || strings.Contains(header, "[chan receive")) && strings.Contains(g, fn+"(") {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d goroutines blocked in %s after 5 s", got, n, fn)
		}
	}
}
