package fastpath_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/tcp"
)

// The life of connections between xdpnet and the kernel: many short
// ones, the close orders, half-close, refusal and resets. The harness
// (tcpLab, xflow, the kernel's helpers) is in tcp_lab_test.go.

// rrLen is the length of a request and of its response in the short
// connection tests: a request names its connection, the response is its
// SHA-256.
const rrLen = 32

func rrRequest(round, i int) []byte {
	return fmt.Appendf(nil, "%-*s", rrLen, fmt.Sprintf("request %d of round %d", i, round))
}

func rrResponse(req []byte) []byte {
	s := sha256.Sum256(req)
	return s[:]
}

// xrr is an xdpnet app for one short connection. A client writes its
// request, reads the response, checks it and closes first: it ends in
// TIME-WAIT. A server reads the request, writes its response, reads up to
// the client's FIN and closes: it ends CLOSED, through LAST-ACK.
type xrr struct {
	c      *tcp.Conn
	client bool
	req    []byte // the client's request
	out    []byte // still to write
	in     []byte // received
	eof    bool
	closed bool
	buf    [2 * rrLen]byte
}

// step runs the connection on; done, with err, once it ended as it
// should.
func (a *xrr) step() (done bool, err error) {
	if err := a.c.Err(); err != nil {
		return true, err
	}
	st := a.c.State()
	switch {
	case st == tcp.SynSent:
		return false, nil
	case a.closed && a.client && st == tcp.TimeWait, a.closed && !a.client && st == tcp.Closed:
		return true, nil
	case a.closed && st == tcp.Closed:
		return true, fmt.Errorf("%v: closed without TIME-WAIT", a.c.LocalAddr())
	case a.closed:
		return false, nil
	}
	for !a.eof {
		n, err := a.c.Read(a.buf[:])
		a.in = append(a.in, a.buf[:n]...)
		if err == io.EOF {
			a.eof = true
		} else if errors.Is(err, tcp.ErrWouldBlock) {
			break
		} else if err != nil {
			return true, err
		}
	}
	if !a.client && a.out == nil && len(a.in) >= rrLen {
		a.out = rrResponse(a.in[:rrLen])
	}
	if len(a.out) > 0 {
		n, err := a.c.Write(a.out)
		if err != nil && !errors.Is(err, tcp.ErrWouldBlock) {
			return true, err
		}
		a.out = a.out[n:]
	}
	switch {
	case a.client && len(a.in) >= rrLen:
		if !bytes.Equal(a.in, rrResponse(a.req)) {
			return true, fmt.Errorf("%v: response %x to %q", a.c.LocalAddr(), a.in, a.req)
		}
	case !a.client && a.eof:
		if len(a.in) != rrLen || len(a.out) > 0 {
			return true, fmt.Errorf("%v: FIN after %d bytes of request, %d of response unsent", a.c.LocalAddr(), len(a.in), len(a.out))
		}
	case a.eof:
		return true, fmt.Errorf("%v: FIN after %d bytes of response", a.c.LocalAddr(), len(a.in))
	default:
		return false, nil
	}
	a.closed = true
	return false, a.c.Close()
}

// kernelRRServer serves short connections on ln until it closes: each
// one's request, answered, then the client's FIN, then close. Each
// connection's outcome goes to results.
func kernelRRServer(ln *net.TCPListener, results chan<- error) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			results <- func() error {
				if err := c.SetDeadline(time.Now().Add(labTimeout)); err != nil {
					return err
				}
				req := make([]byte, rrLen)
				if _, err := io.ReadFull(c, req); err != nil {
					return fmt.Errorf("kernel: request from %v: %w", c.RemoteAddr(), err)
				}
				if _, err := c.Write(rrResponse(req)); err != nil {
					return fmt.Errorf("kernel: response to %v: %w", c.RemoteAddr(), err)
				}
				if n, err := c.Read(req); n != 0 || err != io.EOF {
					return fmt.Errorf("kernel: %d bytes, %v from %v, not its FIN", n, err, c.RemoteAddr())
				}
				return nil
			}()
		}()
	}
}

// kernelRRClient runs a short connection to xdpnet's port: request,
// response, checked, close.
func kernelRRClient(l *lab.Lab, port uint16, req []byte) error {
	c, err := kernelDial(l, port)
	if err != nil {
		return fmt.Errorf("kernel: connect: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("kernel: request from %v: %w", c.LocalAddr(), err)
	}
	resp := make([]byte, rrLen+1)
	if _, err := io.ReadFull(c, resp[:rrLen]); err != nil {
		return fmt.Errorf("kernel: response to %v: %w", c.LocalAddr(), err)
	}
	if !bytes.Equal(resp[:rrLen], rrResponse(req)) {
		return fmt.Errorf("kernel: response %x to %q", resp[:rrLen], req)
	}
	return nil
}

// TestTCPShortConnsWithKernel runs 100 short connections one after the
// other and 100 at once, xdpnet as client and as server, each with a
// request and its response checked on both sides, and every connection
// ending as it should (the client, which closes first, in TIME-WAIT).
func TestTCPShortConnsWithKernel(t *testing.T) {
	const conns = 100
	s := newTCPLab(t, lab.Native, tcp.Config{})

	// xdpnet as client: xdpnet's results come from the poller, the
	// kernel server's from its goroutines.
	ln := kernelListen(t, s.l)
	kernelResults := make(chan error, 2*conns)
	go kernelRRServer(ln, kernelResults)
	server := addrPort(ln.Addr())
	xResults := make(chan error, conns)
	t.Run("XdpnetClientSequential", func(t *testing.T) {
		var cur *xrr
		i := 0
		s.do(t, func(tb *tcp.Table, _ time.Duration) {
			s.apps = append(s.apps, func(now time.Duration) bool {
				for {
					if cur != nil {
						done, err := cur.step()
						if !done {
							return false
						}
						xResults <- err
					}
					if i == conns {
						return true
					}
					req := rrRequest(0, i)
					i++
					c, err := tb.Dial(now, netip.AddrPort{}, server)
					if err != nil {
						xResults <- err
						cur = nil
						continue
					}
					cur = &xrr{c: c, client: true, req: req, out: req}
				}
			})
		})
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, connection %d", i)
			require.NoError(t, receive(t, kernelResults, "the kernel's result"), "kernel, connection %d", i)
		}
	})
	t.Run("XdpnetClientConcurrent", func(t *testing.T) {
		s.do(t, func(tb *tcp.Table, now time.Duration) {
			for i := range conns {
				req := rrRequest(1, i)
				c, err := tb.Dial(now, netip.AddrPort{}, server)
				if err != nil {
					xResults <- err
					continue
				}
				a := &xrr{c: c, client: true, req: req, out: req}
				s.apps = append(s.apps, func(time.Duration) bool {
					done, err := a.step()
					if done {
						xResults <- err
					}
					return done
				})
			}
		})
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, result %d", i)
			require.NoError(t, receive(t, kernelResults, "the kernel's result"), "kernel, result %d", i)
		}
	})
	// xdpnet's clients closed first: the kernel server's ends went
	// CLOSE-WAIT, LAST-ACK and are gone.
	var left []string
	eventually(t, func() bool {
		left = left[:0]
		for line := range strings.Lines(s.l.Peer.Run(t, "ss", "-Htan")) {
			if f := strings.Fields(line); len(f) >= 5 && f[3] == server.String() && f[0] != "LISTEN" {
				left = append(left, f[0])
			}
		}
		return len(left) == 0
	}, func() string { return fmt.Sprintf("the kernel server's sockets left: %v", left) })

	// xdpnet as server.
	s.listenApp(t, 7002, conns, func(c *tcp.Conn) {
		a := &xrr{c: c}
		s.apps = append(s.apps, func(time.Duration) bool {
			done, err := a.step()
			if done {
				xResults <- err
			}
			return done
		})
	})
	t.Run("XdpnetServerSequential", func(t *testing.T) {
		for i := range conns {
			require.NoError(t, kernelRRClient(s.l, 7002, rrRequest(2, i)), "kernel, connection %d", i)
		}
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, connection %d", i)
		}
	})
	t.Run("XdpnetServerConcurrent", func(t *testing.T) {
		errs := make(chan error, conns)
		for i := range conns {
			go func() { errs <- kernelRRClient(s.l, 7002, rrRequest(3, i)) }()
		}
		for i := range conns {
			require.NoError(t, receive(t, errs, "the kernel's result"), "kernel, result %d", i)
		}
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, result %d", i)
		}
	})
	// The kernel clients closed first: their ends wait in TIME-WAIT.
	tw := 0
	for line := range strings.Lines(s.l.Peer.Run(t, "ss", "-Htan", "state", "time-wait")) {
		if strings.Contains(line, netip.AddrPortFrom(s.l.StackAddr, 7002).String()) {
			tw++
		}
	}
	assert.Equal(t, 2*conns, tw, "the kernel clients' connections in TIME-WAIT")

	st := s.checkClean(t)
	assert.EqualValues(t, 2*conns, st.ActiveOpens)
	assert.EqualValues(t, 2*conns, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts+st.ListenDrops)
	t.Logf("xdpnet's TCP counters: %+v", st)
}

// TestTCPCloseOrderWithKernel closes a connection from each side first,
// and follows both ends through RFC 9293 3.6's states: the side that
// closes first goes FIN-WAIT-1, FIN-WAIT-2 and waits in TIME-WAIT; the
// other goes CLOSE-WAIT, LAST-ACK and CLOSED. The kernel's states are
// read with ss, xdpnet's with Conn.State on the poller goroutine. A
// kernel client may reconnect from its port into xdpnet's TIME-WAIT.
func TestTCPCloseOrderWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelClosesFirst", func(t *testing.T) {
		accepted := s.acceptOne(t, 7003)
		kc, err := kernelDial(s.l, 7003)
		require.NoError(t, err)
		defer kc.Close()
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		c := receive(t, accepted, "an accepted connection")
		s.waitState(t, c, tcp.Established)
		waitKernelState(t, s.l, kl, kr, "ESTAB")

		require.NoError(t, kc.Close())
		waitKernelState(t, s.l, kl, kr, "FIN-WAIT-2")
		s.waitState(t, c, tcp.CloseWait)
		var readErr error
		var st tcp.State
		s.do(t, func(*tcp.Table, time.Duration) {
			_, readErr = c.Read(make([]byte, 1))
			c.Close()
			st = c.State() // our FIN is queued, not yet sent
		})
		assert.Equal(t, io.EOF, readErr)
		assert.Equal(t, tcp.LastAck, st)
		s.waitState(t, c, tcp.Closed)
		waitKernelState(t, s.l, kl, kr, "TIME-WAIT")
		s.do(t, func(*tcp.Table, time.Duration) { assert.NoError(t, c.Err()) })
	})
	t.Run("KernelReconnectsIntoTimeWait", func(t *testing.T) {
		// xdpnet's server closes first, so its end waits in TIME-WAIT;
		// the kernel connects again from the same port at once. RFC
		// 6191 (RFC 1122 4.2.2.13 without timestamps) lets a SYN above
		// the old sequence space open a new connection, as Linux does.
		accepted := make(chan *tcp.Conn, 2)
		s.listenApp(t, 7008, 2, func(c *tcp.Conn) {
			c.Close()
			accepted <- c
		})
		var from uint16
		for round := range 2 {
			kc, err := kernelDialFrom(s.l, from, 7008)
			require.NoError(t, err, "round %d", round)
			from = addrPort(kc.LocalAddr()).Port()
			n, err := kc.Read(make([]byte, 1))
			assert.Zero(t, n)
			assert.Equal(t, io.EOF, err, "round %d", round)
			require.NoError(t, kc.Close())
			c := receive(t, accepted, "an accepted connection")
			s.waitState(t, c, tcp.TimeWait)
		}
		st, _ := s.stats(t)
		assert.EqualValues(t, 1, st.TimeWaitRecycled)
	})
	t.Run("XdpnetClosesFirst", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		c := s.dial(t, addrPort(ln.Addr()))
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		s.waitState(t, c, tcp.Established)
		waitKernelState(t, s.l, kl, kr, "ESTAB")

		var st tcp.State
		s.do(t, func(*tcp.Table, time.Duration) { c.Close(); st = c.State() })
		assert.Equal(t, tcp.FinWait1, st)
		s.waitState(t, c, tcp.FinWait2)
		waitKernelState(t, s.l, kl, kr, "CLOSE-WAIT")
		n, err := kc.Read(make([]byte, 1))
		assert.Zero(t, n)
		assert.Equal(t, io.EOF, err)

		// While xdpnet's poller stands still, the kernel's FIN goes
		// unacknowledged: the kernel waits in LAST-ACK.
		resume := s.pause(t)
		defer resume()
		require.NoError(t, kc.Close())
		waitKernelState(t, s.l, kl, kr, "LAST-ACK")
		resume()
		s.waitState(t, c, tcp.TimeWait)
		waitKernelState(t, s.l, kl, kr, "")
		// TIME-WAIT lasts 2×MSL, then the connection is gone.
		s.waitState(t, c, tcp.Closed)
		s.do(t, func(*tcp.Table, time.Duration) { assert.NoError(t, c.Err()) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 3, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts)
}

// TestTCPHalfCloseWithKernel: one side closes its write side and goes on
// reading what the other sends after that, the kernel first, then
// xdpnet.
func TestTCPHalfCloseWithKernel(t *testing.T) {
	const request, response = 256 << 10, 1 << 20
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelHalfCloses", func(t *testing.T) {
		// xdpnet answers only once it read the whole request and the
		// test released it.
		hold := make(chan struct{})
		flows := make(chan *xflow, 1)
		s.listenApp(t, 7004, 1, func(c *tcp.Conn) {
			x := newXflow(c, response, 5)
			x.afterEOF, x.hold = true, hold
			s.apps = append(s.apps, x.step)
			flows <- x
		})
		kc, err := kernelDial(s.l, 7004)
		require.NoError(t, err)
		defer kc.Close()
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		sent, n, err := kernelSend(kc, request, 6)
		require.NoError(t, err)
		require.NoError(t, kc.CloseWrite())
		x := receive(t, flows, "an accepted connection")
		waitKernelState(t, s.l, kl, kr, "FIN-WAIT-2")
		s.waitState(t, x.c, tcp.CloseWait)
		s.release(t, hold)
		recv, m, err := kernelRecv(kc)
		require.NoError(t, err)
		waitKernelState(t, s.l, kl, kr, "TIME-WAIT")

		res := receive(t, x.done, "xdpnet's result")
		require.NoError(t, res.err)
		assert.EqualValues(t, request, n)
		assert.EqualValues(t, request, res.nrecv)
		assert.Equal(t, sent, res.recv, "kernel -> xdpnet, before the kernel's FIN")
		assert.EqualValues(t, response, m)
		assert.Equal(t, patternSum(response, 5), recv, "xdpnet -> kernel, after the kernel's FIN")
		assert.Equal(t, res.sent, recv)
		assert.Equal(t, "[ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED]", fmt.Sprint(res.states))
	})
	t.Run("XdpnetHalfCloses", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		x := s.dialFlow(t, addrPort(ln.Addr()), request, 7)
		c := x.c
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		recv, m, err := kernelRecv(kc)
		require.NoError(t, err)
		waitKernelState(t, s.l, kl, kr, "CLOSE-WAIT")
		s.waitState(t, c, tcp.FinWait2)
		// The response comes in two halves, further apart than the
		// minimum RTO: xdpnet acknowledges the first in FIN-WAIT-2 and
		// must have nothing to retransmit while it waits.
		h := sha256.New()
		var n int64
		for half := range 2 {
			if half == 1 {
				time.Sleep(300 * time.Millisecond)
			}
			m, err := io.CopyN(io.MultiWriter(kc, h), pattern(8+uint64(half)), response/2)
			require.NoError(t, err)
			n += m
		}
		var sent [32]byte
		copy(sent[:], h.Sum(nil))
		require.NoError(t, kc.Close())

		res := receive(t, x.done, "xdpnet's result")
		require.NoError(t, res.err)
		waitKernelState(t, s.l, kl, kr, "")
		assert.EqualValues(t, request, m)
		assert.Equal(t, patternSum(request, 7), recv, "xdpnet -> kernel, before xdpnet's FIN")
		assert.Equal(t, res.sent, recv)
		assert.EqualValues(t, response, n)
		assert.EqualValues(t, response, res.nrecv)
		assert.Equal(t, sent, res.recv, "kernel -> xdpnet, after xdpnet's FIN")
		assert.Equal(t, "[SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT]", fmt.Sprint(res.states))
		var cs tcp.ConnStats
		s.do(t, func(*tcp.Table, time.Duration) { cs = c.Stats() })
		assert.Zero(t, cs.Timeouts, "retransmission timeouts on a lossless link: %+v", cs)
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 1, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts)
}

// TestTCPRefusedWithKernel: a SYN to a port nobody listens on draws a
// RST either way, which the kernel reports as ECONNREFUSED and xdpnet as
// tcp.ErrRefused.
func TestTCPRefusedWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelToXdpnet", func(t *testing.T) {
		c, err := kernelDial(s.l, 4444)
		if c != nil {
			c.Close()
		}
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	})
	t.Run("XdpnetToKernel", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		closed := addrPort(ln.Addr())
		require.NoError(t, ln.Close())
		c := s.dial(t, closed)
		s.waitState(t, c, tcp.Closed)
		s.do(t, func(*tcp.Table, time.Duration) { assert.ErrorIs(t, c.Err(), tcp.ErrRefused) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.OutRsts, "the answer to the kernel's SYN")
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 1, st.AttemptFails)
	assert.Zero(t, st.PassiveOpens)
}

// TestTCPResetWithKernel: resets either way end the connection at once,
// with ECONNRESET for the kernel's socket and tcp.ErrReset for xdpnet's.
func TestTCPResetWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelAborts", func(t *testing.T) {
		accepted := s.acceptOne(t, 7006)
		kc, err := kernelDial(s.l, 7006)
		require.NoError(t, err)
		defer kc.Close()
		c := receive(t, accepted, "an accepted connection")
		s.waitState(t, c, tcp.Established)
		require.NoError(t, kc.SetLinger(0))
		require.NoError(t, kc.Close()) // SO_LINGER 0: a RST, no FIN
		s.waitState(t, c, tcp.Closed)
		var readErr, writeErr error
		s.do(t, func(*tcp.Table, time.Duration) {
			_, readErr = c.Read(make([]byte, 1))
			_, writeErr = c.Write([]byte("x"))
		})
		assert.ErrorIs(t, readErr, tcp.ErrReset)
		assert.ErrorIs(t, writeErr, tcp.ErrReset)
	})
	t.Run("XdpnetAborts", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		c := s.dial(t, addrPort(ln.Addr()))
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		s.waitState(t, c, tcp.Established)
		s.do(t, func(*tcp.Table, time.Duration) { c.Abort() })
		_, err := kc.Read(make([]byte, 1))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		waitKernelState(t, s.l, kl, kr, "")
	})
	t.Run("XdpnetClosesUnread", func(t *testing.T) {
		// RFC 1122 4.2.2.13: closing with data unread resets.
		accepted := s.acceptOne(t, 7007)
		kc, err := kernelDial(s.l, 7007)
		require.NoError(t, err)
		defer kc.Close()
		_, err = kc.Write([]byte("never read"))
		require.NoError(t, err)
		c := receive(t, accepted, "an accepted connection")
		var readable int
		eventually(t, func() bool {
			s.do(t, func(*tcp.Table, time.Duration) { readable = c.Readable() })
			return readable == 10
		},
			func() string { return fmt.Sprintf("%d bytes readable, not 10", readable) })
		s.do(t, func(*tcp.Table, time.Duration) { c.Close() })
		_, err = kc.Read(make([]byte, 1))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		s.do(t, func(*tcp.Table, time.Duration) { assert.ErrorIs(t, c.Err(), tcp.ErrAborted) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.EstabResets, "the kernel's RST")
	assert.EqualValues(t, 2, st.OutRsts, "Abort's and Close's")
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 2, st.PassiveOpens)
}
