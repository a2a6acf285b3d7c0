package sockapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestMultiQueueLab runs a two-queue stack on a two-queue veth pair. veth
// picks the queue by the sending CPU, not by a hash xdpnet knows, so about
// half the segments land on the poller that does not own their flow and
// are handed over; every connection, accepted or dialled, must work.
func TestMultiQueueLab(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	s := labStack(t, l, sockapi.Config{Queues: 2})
	const conns = 40
	msg := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("conn %d;", i)), 2000) }

	// xdpnet serves echo; the kernel connects.
	ln, err := s.Listen("tcp", ":7007")
	require.NoError(t, err)
	defer ln.Close()
	go serveEach(ln, func(c net.Conn) { io.Copy(c, c) })
	errs := make(chan error, conns)
	for i := range conns {
		go func() {
			errs <- l.Peer.Do(func() error {
				c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
				if err != nil {
					return err
				}
				return roundTrip(c, msg(i))
			})
		}()
	}
	for range conns {
		assert.NoError(t, <-errs)
	}

	// The kernel serves echo; xdpnet connects.
	kl := kernelListen(t, l)
	go func() {
		for {
			c, err := kl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	for i := range conns {
		go func() {
			c, err := s.Dial("tcp", kl.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			errs <- roundTrip(c, msg(i))
		}()
	}
	for range conns {
		assert.NoError(t, <-errs)
	}
	// A full handover ring drops by design (TCP retransmits), so drops
	// are not a failure: a slow poller (the race detector) has some. What
	// must hold is that every connection above echoed its bytes and that
	// the counters add up: each segment taken in was passed out.
	var in, out, drops uint64
	for _, q := range s.Counters().Queues {
		st := q.Poller
		in, out, drops = in+st.HandoversIn, out+st.HandoversOut, drops+st.HandoverDrops
	}
	t.Logf("handovers: %d out, %d in, %d dropped on a full ring", out, in, drops)
	assert.Positive(t, out, "some segments landed on the other queue")
	assert.LessOrEqual(t, in, out, "a poller took in more handovers than were passed")
}

// serveEach runs serve on a goroutine for every connection ln accepts,
// and closes the connection after; it returns when ln is closed.
func serveEach(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}

// roundTrip writes b on an echo connection, half-closes, reads the echo
// back and checks it, then closes.
func roundTrip(c net.Conn, b []byte) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(b)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, b) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(b), len(got))
	}
	return nil
}
