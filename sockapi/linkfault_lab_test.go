package sockapi_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/inline"
	"github.com/xdpnet/xdpnet/xdp"
)

// flapSize is the transfer a flap interrupts.
const flapSize = 64 << 20

// flapDown is how long a flap keeps the link down.
const flapDown = time.Second

// flapResult is one transfer: how long it took, and how far the receiver
// had got when the link went down.
type flapResult struct {
	took   time.Duration
	atDown int64
}

// flapTransfer sends flapSize bytes of a seeded stream over a connection
// dial makes to the kernel listening on the peer, and has the receiver
// send back the SHA-256 of what it read; the sender compares it with its
// own. With flap set, once 4 MiB have arrived, flap's veth end goes down
// for flapDown and comes back up.
func flapTransfer(t *testing.T, ln net.Listener, dial func() (net.Conn, error), flap *lab.Host) flapResult {
	t.Helper()
	var received atomic.Int64
	recvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		h := sha256.New()
		if _, err := io.CopyN(io.MultiWriter(h, counter{&received}), c, flapSize); err != nil {
			recvErr <- fmt.Errorf("receiver after %d bytes: %w", received.Load(), err)
			return
		}
		_, err = c.Write(h.Sum(nil))
		recvErr <- err
	}()
	flapped := make(chan error, 1)
	var res flapResult
	if flap != nil {
		go func() {
			for received.Load() < 4<<20 {
				time.Sleep(100 * time.Microsecond)
			}
			if err := flap.SetLinkUp(false); err != nil {
				flapped <- err
				return
			}
			res.atDown = received.Load()
			// The fault being injected: a link down for a second.
			time.Sleep(flapDown)
			flapped <- flap.SetLinkUp(true)
		}()
	}

	start := time.Now()
	c, err := dial()
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	rng := rand.NewChaCha8([32]byte{7})
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for sent := 0; sent < flapSize; sent += len(buf) {
		rng.Read(buf)
		h.Write(buf)
		_, err := c.Write(buf)
		require.NoError(t, err, "write after %d bytes", sent)
	}
	sum := make([]byte, sha256.Size)
	_, err = io.ReadFull(c, sum)
	require.NoError(t, err, "read the receiver's hash")
	res.took = time.Since(start)
	require.NoError(t, <-recvErr)
	assert.Equal(t, h.Sum(nil), sum, "the receiver read other bytes than were sent")
	if flap != nil {
		require.NoError(t, <-flapped)
		require.Less(t, res.atDown, int64(flapSize), "the flap came after the transfer")
		assert.Greater(t, res.took, flapDown, "the transfer outlived the flap")
	}
	return res
}

// counter counts the bytes written to it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return len(b), nil
}

// TestLinkFlapLab: a 64 MiB transfer from xdpnet to the kernel survives
// its link going down for a second, on either end (down on xdpnet's end:
// sendto says ENETDOWN; down on the peer's end: xdpnet's loses its
// carrier and the kernel drops what it sends); the kernel's own transfer
// over the same veth, from the Local namespace, takes the same flap.
func TestLinkFlapLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	var poller *fastpath.Poller
	s := labStack(t, l, sockapi.Config{OnPoller: func(p inline.Poller) error { poller = p.(*fastpath.Poller); return nil }})
	ln := kernelListen(t, l)
	xdpnetDial := func() (net.Conn, error) { return s.Dial("tcp", ln.Addr().String()) }
	kernelDial := func() (c net.Conn, err error) {
		err = l.Local.Do(func() error {
			c, err = net.Dial("tcp4", ln.Addr().String())
			return err
		})
		return c, err
	}
	cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	require.NoError(t, err)
	t.Logf("the kernel runs %s", strings.TrimSpace(string(cc)))

	for _, c := range []struct {
		name string
		dial func() (net.Conn, error)
	}{{"xdpnet", xdpnetDial}, {"kernel", kernelDial}} {
		t.Run(c.name, func(t *testing.T) {
			before := s.Counters()
			calm := flapTransfer(t, ln, c.dial, nil)
			local := flapTransfer(t, ln, c.dial, l.Local)
			peer := flapTransfer(t, ln, c.dial, l.Peer)
			after := s.Counters()
			t.Logf("%s: 64 MiB in %v without a flap; %v with a 1 s flap of its own end (down at %d MiB), %v of the peer's (down at %d MiB)",
				c.name, calm.took.Round(time.Millisecond), local.took.Round(time.Millisecond), local.atDown>>20,
				peer.took.Round(time.Millisecond), peer.atDown>>20)
			if c.name == "xdpnet" {
				bq, aq := before.Queues[0], after.Queues[0]
				t.Logf("xdpnet: %d frames handed to the link while down, %d sendto calls that dropped a frame (no carrier), %d segments retransmitted",
					aq.Poller.TxLinkDown-bq.Poller.TxLinkDown, aq.Link.TxDrops-bq.Link.TxDrops, after.TCP.RetransSegs-before.TCP.RetransSegs)
				assert.Greater(t, aq.Link.TxDrops, bq.Link.TxDrops, "sendto said the peer's flap cost frames (EBUSY)")
				assert.Greater(t, aq.Poller.TxLinkDown, bq.Poller.TxLinkDown, "sendto saw the link down")
				assert.Greater(t, after.TCP.RetransSegs, before.TCP.RetransSegs, "TCP retransmitted what the flap lost")
				checkFramesHome(t, s, poller)
			}
		})
	}
	require.NoError(t, s.Err(), "the flaps did not fail the stack")
}

// checkFramesHome asserts that no UMEM frame of the stack's socket is
// left on its TX ring once the stack is idle (the frames a flap kept
// there went out when the link came up), that the poller holds no more
// than its batch of spare buffers, and that the kernel never handed back
// a frame it did not hold. It counts on p's goroutine, which owns
// the socket.
func checkFramesHome(t *testing.T, s *sockapi.Stack, p *fastpath.Poller) {
	t.Helper()
	type census struct {
		owners     map[xdp.Owner]int
		violations uint64
	}
	var c census
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		done := make(chan census)
		p.Do(func() {
			sock := sockapi.Device(s).Links()[0].Socket()
			sock.Reap(uint32(sock.Completion.Size()))
			c := census{owners: map[xdp.Owner]int{}, violations: sock.Frames.Violations}
			for i := range sock.Umem().FrameCount() {
				if o, ok := sock.Frames.Owner(uint64(i * sock.Umem().FrameSize())); ok {
					c.owners[o]++
				}
			}
			done <- c
		})
		c = <-done
		if c.owners[xdp.OwnerTX] == 0 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("UMEM frames by owner once idle: %v", c.owners)
	assert.Zero(t, c.owners[xdp.OwnerTX], "frames stranded on the TX ring")
	assert.LessOrEqual(t, c.owners[xdp.OwnerApp], 64, "frames lent to the poller: at most its spare batch")
	assert.Zero(t, c.violations, "frames the kernel handed back that it did not hold")
}

// TestLinkFlapGenericLab: the same flap of xdpnet's end with the steering
// program attached in generic (SKB) mode: the program and the socket
// survive down and up there too.
func TestLinkFlapGenericLab(t *testing.T) {
	l := lab.New(t, lab.Config{Mode: lab.Generic})
	s := labStack(t, l, sockapi.Config{XDPMode: sockapi.XDPGeneric})
	ln := kernelListen(t, l)
	res := flapTransfer(t, ln, func() (net.Conn, error) { return s.Dial("tcp", ln.Addr().String()) }, l.Local)
	t.Logf("generic XDP: 64 MiB in %v with a 1 s flap of xdpnet's end (down at %d MiB)", res.took.Round(time.Millisecond), res.atDown>>20)
	require.NoError(t, s.Err(), "the flap did not fail the stack")
}

// TestInterfaceRemovedLab: an idle stack, its poller parked, learns within
// 5 s that its interface was deleted, or moved to another namespace:
// Failed closes, Err says so, and Close leaves no goroutine or descriptor
// behind.
func TestInterfaceRemovedLab(t *testing.T) {
	for _, c := range []struct {
		name   string
		remove func(l *lab.Lab) error
	}{
		{"Deleted", func(l *lab.Lab) error { return l.Local.DeleteLink() }},
		{"MovedAway", func(l *lab.Lab) error {
			return l.Local.Command(context.Background(), "ip", "link", "set", "dev", l.Local.Link, "netns", l.Peer.NS).Run()
		}},
	} {
		t.Run(c.name, func(t *testing.T) { testInterfaceRemoved(t, c.remove) })
	}
}

func testInterfaceRemoved(t *testing.T, remove func(l *lab.Lab) error) {
	l := lab.New(t, lab.Config{})
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	var s *sockapi.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24)})
		return err
	}))
	defer s.Close()
	for deadline := time.Now().Add(5 * time.Second); s.Counters().Queues[0].Poller.Parks == 0; {
		require.True(t, time.Now().Before(deadline), "the idle poller never parked")
		time.Sleep(time.Millisecond)
	}

	require.NoError(t, remove(l))
	removed := time.Now()
	select {
	case <-s.Failed():
	case <-time.After(5 * time.Second):
		t.Fatal("the stack did not notice its interface removed within 5 s")
	}
	t.Logf("the stack noticed its interface removed after %v", time.Since(removed))
	require.ErrorIs(t, s.Err(), nic.ErrInterfaceRemoved)
	assert.Equal(t, "sockapi: "+l.Local.Link+": interface removed", s.Err().Error())
	assert.EqualError(t, s.Close(), s.Err().Error(), "Close reports the failure, and nothing else")

	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines, "goroutines after Close")
	// Polled too: Host.Do's goroutine closes its namespace handles just
	// after it hands back fn's result.
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		leaked = leaked[:0]
		for fd, target := range openFDs(t) {
			if fds[fd] != target {
				leaked = append(leaked, fd+" ("+target+")")
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	assert.Empty(t, leaked, "descriptors opened and not closed")
}
