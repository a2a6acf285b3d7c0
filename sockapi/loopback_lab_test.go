package sockapi_test

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestLoopbackLab: on AF_XDP, xdpnet dials its own address and 127.0.0.1
// (TCP, and a closed port) and exchanges UDP with itself, as the kernel
// beside it in the same namespace does with its own address and lo: each
// result is the kernel's, measured in the same test.
func TestLoopbackLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	type result struct {
		connected bool
		errno     syscall.Errno
		took      time.Duration
	}
	// try dials addr with dial and exchanges a byte with ln's echo.
	try := func(dial func(string) (net.Conn, error), addr string) result {
		start := time.Now()
		c, err := dial(addr)
		if err != nil {
			return result{errno: errnoOf(err), took: time.Since(start)}
		}
		require.NoError(t, roundTrip(c, []byte("x")))
		return result{connected: true, took: time.Since(start)}
	}
	kernelDial := func(a string) (c net.Conn, err error) {
		require.NoError(t, l.Local.Do(func() error {
			c, err = net.DialTimeout("tcp4", a, 10*time.Second)
			return nil
		}))
		return c, err
	}
	var kln net.Listener
	require.NoError(t, l.Local.Do(func() (err error) {
		kln, err = net.Listen("tcp4", "0.0.0.0:7")
		return err
	}))
	t.Cleanup(func() { kln.Close() })
	go echoServe(kln)
	xln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	t.Cleanup(func() { xln.Close() })
	go echoServe(xln)

	for _, c := range []struct {
		name         string
		kernel, ours netip.AddrPort
	}{
		{"own address", netip.AddrPortFrom(l.Local.Addr.Addr(), 7), netip.AddrPortFrom(s.Addr(), 7)},
		{"127.0.0.1", netip.MustParseAddrPort("127.0.0.1:7"), netip.MustParseAddrPort("127.0.0.1:7")},
		{"127.0.0.1, closed port", netip.MustParseAddrPort("127.0.0.1:9"), netip.MustParseAddrPort("127.0.0.1:9")},
		{"own address, closed port", netip.AddrPortFrom(l.Local.Addr.Addr(), 9), netip.AddrPortFrom(s.Addr(), 9)},
	} {
		k := try(kernelDial, c.kernel.String())
		x := try(func(a string) (net.Conn, error) { return s.Dial("tcp", a) }, c.ours.String())
		t.Logf("%s: kernel: connected %v, err %v, in %v; xdpnet: connected %v, err %v, in %v", c.name,
			k.connected, k.errno, k.took.Round(time.Microsecond), x.connected, x.errno, x.took.Round(time.Microsecond))
		assert.Equal(t, k.connected, x.connected, c.name)
		assert.Equal(t, k.errno, x.errno, c.name)
	}

	// UDP: a datagram to itself and its answer, on both stacks.
	kernelUDP := func() (err error) {
		return l.Local.Do(func() error {
			srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer srv.Close()
			return udpExchange(srv, func(a string) (net.Conn, error) { return net.Dial("udp4", a) })
		})
	}
	require.NoError(t, kernelUDP(), "the kernel's")
	srv, err := s.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, udpExchange(srv, func(a string) (net.Conn, error) { return s.Dial("udp", a) }), "xdpnet's")
	assert.NotZero(t, s.Counters().Queues[0].Poller.LoopbackPackets)
}

// udpExchange sends a datagram to srv from a socket dial connects, and
// has srv answer it.
func udpExchange(srv net.PacketConn, dial func(string) (net.Conn, error)) error {
	c, err := dial(srv.LocalAddr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	c.SetDeadline(deadline)
	srv.SetDeadline(deadline)
	if _, err = c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 16)
	n, from, err := srv.ReadFrom(b)
	if err != nil {
		return err
	}
	if _, err = srv.WriteTo(b[:n], from); err != nil {
		return err
	}
	_, err = c.Read(b)
	return err
}
