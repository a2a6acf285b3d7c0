package sockapi_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/xdpnet/xdpnet/sockapi"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// loopbackStack is one stack on a pipe whose other end nobody serves:
// whatever reaches the link is lost, so only the loopback path answers.
func loopbackStack(t testing.TB) *sockapi.Stack {
	a, _ := pipeStacks(t)
	return a
}

// TestLoopbackTCP: the stack dials its own address and 127.0.0.1 and
// connects at once through its loopback path, as Linux does; a dial to
// 127/8 goes from 127.0.0.1, and a listener on 0.0.0.0 accepts both.
func TestLoopbackTCP(t *testing.T) {
	s := loopbackStack(t)
	ln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go echoServe(ln)
	before := s.Counters().Queues[0].Link.TxFrames // the ARP announcement
	for _, dst := range []netip.Addr{s.Addr(), loopback, netip.MustParseAddr("127.3.2.1")} {
		c, err := s.Dial("tcp", netip.AddrPortFrom(dst, 7).String())
		require.NoError(t, err, dst)
		want := s.Addr()
		if dst.IsLoopback() {
			want = loopback
		}
		assert.Equal(t, want, c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(), "source for %v", dst)
		require.NoError(t, roundTrip(c, []byte("hello, "+dst.String())), dst)
	}
	q := s.Counters().Queues[0]
	assert.NotZero(t, q.Poller.LoopbackPackets)
	assert.Zero(t, q.Poller.LoopbackDrops)
	assert.Equal(t, before, q.Link.TxFrames, "nothing went on the link")
}

// TestLoopbackListenerAddress: a listener on the stack's address does not
// accept on 127.0.0.1, nor one on 127.0.0.1 on the stack's address: the
// dial is refused at once (a RST from ourselves), as on Linux.
func TestLoopbackListenerAddress(t *testing.T) {
	s := loopbackStack(t)
	for _, c := range []struct{ listen, dial netip.Addr }{{s.Addr(), loopback}, {loopback, s.Addr()}} {
		ln, err := s.Listen("tcp", netip.AddrPortFrom(c.listen, 8).String())
		require.NoError(t, err)
		go echoServe(ln)
		_, err = s.Dial("tcp", netip.AddrPortFrom(c.dial, 8).String())
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "listening on %v, dialled %v", c.listen, c.dial)
		conn, err := s.Dial("tcp", netip.AddrPortFrom(c.listen, 8).String())
		require.NoError(t, err)
		require.NoError(t, roundTrip(conn, []byte("x")))
		require.NoError(t, ln.Close())
	}
}

// TestLoopbackSourceStaysHome: a dial from 127.0.0.1 to another host
// fails at once with EINVAL, as Linux's connect: 127/8 never goes on the
// link. From 127.0.0.1 to the stack's own address it connects.
func TestLoopbackSourceStaysHome(t *testing.T) {
	s := loopbackStack(t)
	ln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go echoServe(ln)
	d := &sockapi.Dialer{Stack: s, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	_, err = d.Dial("tcp", addrB.String()+":7")
	require.ErrorIs(t, err, syscall.EINVAL)
	c, err := d.Dial("tcp", netip.AddrPortFrom(s.Addr(), 7).String())
	require.NoError(t, err)
	require.NoError(t, roundTrip(c, []byte("home")))
}

// loopbackPair is a connected pair through the loopback path to dst.
func loopbackPair(t testing.TB, s *sockapi.Stack, ln net.Listener, dst netip.Addr) (client, server net.Conn) {
	t.Helper()
	return connPair(t, s, ln, netip.AddrPortFrom(dst, ln.Addr().(*net.TCPAddr).AddrPort().Port()))
}

// TestLoopbackDeadlineAndReset: deadlines and a RST behave on a loopback
// connection as on any other.
func TestLoopbackDeadlineAndReset(t *testing.T) {
	s := loopbackStack(t)
	ln, err := s.Listen("tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, server := loopbackPair(t, s, ln, loopback)
	require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, client.SetReadDeadline(time.Time{}))
	require.NoError(t, server.(*sockapi.Conn).SetLinger(0))
	require.NoError(t, server.Close())
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)
	_, err = client.Write([]byte("x"))
	require.ErrorIs(t, err, syscall.EPIPE)
}

// TestNettestConnLoopback runs x/net's net.Conn conformance suite on
// loopback connections, to the stack's address and to 127.0.0.1.
func TestNettestConnLoopback(t *testing.T) {
	s := loopbackStack(t)
	ln, err := s.Listen("tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	for _, dst := range []netip.Addr{s.Addr(), loopback} {
		t.Run(dst.String(), func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				accepted := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					accepted <- c
				}()
				port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
				if c1, err = s.Dial("tcp", netip.AddrPortFrom(dst, port).String()); err != nil {
					return nil, nil, nil, err
				}
				if c2 = <-accepted; c2 == nil {
					c1.Close()
					return nil, nil, nil, errors.New("accept failed")
				}
				return c1, c2, func() { c1.Close(); c2.Close() }, nil
			})
		})
	}
}

// TestLoopbackUDP: datagrams to the stack's own address and to 127.0.0.1
// arrive, from the address Linux would send them from, and the answer
// comes back.
func TestLoopbackUDP(t *testing.T) {
	s := loopbackStack(t)
	srv, err := s.ListenPacket("udp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	port := srv.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	for _, dst := range []netip.Addr{s.Addr(), loopback} {
		c, err := s.Dial("udp", netip.AddrPortFrom(dst, port).String())
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		want := s.Addr()
		if dst.IsLoopback() {
			want = loopback
		}
		assert.Equal(t, want, c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), "local address to %v", dst)
		srv.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte("ping " + dst.String()))
		require.NoError(t, err)
		b := make([]byte, 64)
		n, from, err := srv.ReadFrom(b)
		require.NoError(t, err)
		assert.Equal(t, "ping "+dst.String(), string(b[:n]))
		assert.Equal(t, want, from.(*net.UDPAddr).AddrPort().Addr(), "source for %v", dst)
		_, err = srv.WriteTo([]byte("pong"), from)
		require.NoError(t, err)
		n, err = c.Read(b)
		require.NoError(t, err)
		assert.Equal(t, "pong", string(b[:n]))
		require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		_, err = c.Read(b)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.NoError(t, c.Close())
	}
}

// TestLoopbackMultiQueue: with four pollers, loopback connections whose
// two ends belong to different pollers meet through the handover rings,
// and UDP stays on the poller that sent it.
func TestLoopbackMultiQueue(t *testing.T) {
	s, _ := multiPipeStacks(t, 4)
	ln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go echoServe(ln)
	for i := range 16 {
		dst := s.Addr()
		if i%2 == 1 {
			dst = loopback
		}
		c, err := s.Dial("tcp", netip.AddrPortFrom(dst, 7).String())
		require.NoError(t, err, dst)
		require.NoError(t, roundTrip(c, []byte{byte(i)}), dst)
	}
	var handovers uint64
	for _, q := range s.Counters().Queues {
		handovers += q.Poller.HandoversOut
		assert.Zero(t, q.Poller.LoopbackDrops)
	}
	assert.NotZero(t, handovers, "some flows' ends live on two pollers")

	srv, err := s.ListenPacket("udp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := s.Dial("udp", srv.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 8)
	for i := range 8 {
		_, err = c.Write([]byte{byte(i)})
		require.NoError(t, err)
		n, from, err := srv.ReadFrom(b)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, b[:n])
		_, err = srv.WriteTo(b[:n], from)
		require.NoError(t, err)
		n, err = c.Read(b)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, b[:n])
	}
}

// TestLoopbackUDPRefused: a connected UDP socket writing to a closed port
// of the stack hears its own port unreachable: the next read fails with
// ECONNREFUSED, as on Linux's lo.
func TestLoopbackUDPRefused(t *testing.T) {
	s := loopbackStack(t)
	for _, dst := range []netip.Addr{s.Addr(), loopback} {
		c, err := s.Dial("udp", netip.AddrPortFrom(dst, 9).String())
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = c.Read(make([]byte, 8))
		require.ErrorIs(t, err, syscall.ECONNREFUSED, dst)
		require.NoError(t, c.Close())
	}
}

// BenchmarkLoopbackRR measures 1-byte TCP request/response over a
// loopback connection: through xdpnet's loopback path (no syscall, no
// NIC) and, for comparison, through the kernel's lo from the same
// process (net.Dial to 127.0.0.1). The parent logs the kernel's time per
// transaction over xdpnet's.
func BenchmarkLoopbackRR(b *testing.B) {
	perOp := map[string]float64{}
	run := func(name string, listen func() (net.Listener, error), dial func(string) (net.Conn, error)) {
		b.Run(name, func(b *testing.B) {
			ln, err := listen()
			require.NoError(b, err)
			defer ln.Close()
			go serveEach(ln, func(c net.Conn) {
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
			c, err := dial(ln.Addr().String())
			require.NoError(b, err)
			defer c.Close()
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			perOp[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	s := loopbackStack(b)
	run("xdpnet", func() (net.Listener, error) { return s.Listen("tcp", "127.0.0.1:0") },
		func(a string) (net.Conn, error) { return s.Dial("tcp", a) })
	run("kernel", func() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") },
		func(a string) (net.Conn, error) { return net.Dial("tcp4", a) })
	if perOp["xdpnet"] > 0 {
		b.Logf("kernel/xdpnet time per transaction: %.2f (%.0f ns against %.0f ns)",
			perOp["kernel"]/perOp["xdpnet"], perOp["kernel"], perOp["xdpnet"])
	}
}

// TestLoopbackSteadyStateAllocs: once its queues exist, the loopback path
// allocates nothing per packet: writes and reads on a loopback connection
// and a UDP exchange cost no allocation.
func TestLoopbackSteadyStateAllocs(t *testing.T) {
	s := loopbackStack(t)
	ln, err := s.Listen("tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, server := loopbackPair(t, s, ln, loopback)
	assert.Zero(t, transferAllocs(t, client, server), "TCP")

	srv, err := s.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	c, err := s.Dial("udp", srv.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	udpc := srv.(*sockapi.PacketConn)
	wbuf, rbuf := make([]byte, 100), make([]byte, 100)
	udpTrip := func() {
		c.Write(wbuf)
		if _, _, err := udpc.ReadFromUDPAddrPort(rbuf); err != nil {
			t.Fatal(err)
		}
	}
	udpTrip()
	assert.Zero(t, testing.AllocsPerRun(200, udpTrip), "UDP")
}

// BenchmarkLoopbackStream moves data one way over a loopback connection
// and reports the loopback queue's drops per run (TCP retransmits what
// they lose; a window that outgrows the queue would show here).
func BenchmarkLoopbackStream(b *testing.B) {
	s := loopbackStack(b)
	ln, err := s.Listen("tcp", ":0")
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	client, server := loopbackPair(b, s, ln, loopback)
	streamWrites(b, client, server, 64<<10)
	b.ReportMetric(float64(s.Counters().Queues[0].Poller.LoopbackDrops), "drops")
}

// A UDP socket bound to 127.0.0.1 cannot send to another host: EINVAL,
// as Linux's route lookup answers, not a datagram dropped unsaid.
func TestLoopbackUDPSourceToLink(t *testing.T) {
	s := loopbackStack(t)
	pc, err := s.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 3), Port: 9})
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	require.NoError(t, err, "to loopback it goes")
}
