package sockapi_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// multiPipeStacks are two stacks of queues pollers each, joined queue by
// queue by pipes: a flow's segments land on any queue and are handed
// over to the poller that owns the flow.
func multiPipeStacks(t testing.TB, queues int) (a, b *sockapi.Stack) {
	var las, lbs []nic.Link
	for range queues {
		la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
		las, lbs = append(las, la), append(lbs, lb)
	}
	var err error
	a, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24)}, las...)
	require.NoError(t, err)
	b, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lbs...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	return a, b
}

// dialAccept dials through d to ln, an xdpnet listener, and returns both
// ends.
func dialAccept(t testing.TB, d *sockapi.Dialer, ln net.Listener) (dialed, accepted *sockapi.Conn) {
	t.Helper()
	c, sc := dialAcceptAny(t, d, ln)
	return c, sc.(*sockapi.Conn)
}

// dialAcceptAny dials through d to ln, xdpnet's or the kernel's.
func dialAcceptAny(t testing.TB, d *sockapi.Dialer, ln net.Listener) (dialed *sockapi.Conn, accepted net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	select {
	case sc := <-got:
		require.NotNil(t, sc)
		t.Cleanup(func() { sc.Close() })
		return c.(*sockapi.Conn), sc
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	return nil, nil
}

// TestDialerLocalAddr: a Dialer's LocalAddr port is the one the peer
// sees, for TCP (again from the same port to the same peer: EADDRINUSE)
// and UDP; the wrong kind of address is refused.
func TestDialerLocalAddr(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":7100")
	require.NoError(t, err)
	defer ln.Close()
	d := &sockapi.Dialer{Stack: a, LocalAddr: &net.TCPAddr{Port: 40001}}
	c, sc := dialAccept(t, d, ln)
	assert.Equal(t, netip.AddrPortFrom(addrA, 40001), sc.RemoteAddr().(*net.TCPAddr).AddrPort())
	assert.Equal(t, netip.AddrPortFrom(addrA, 40001), c.LocalAddr().(*net.TCPAddr).AddrPort())
	_, err = d.Dial("tcp", ln.Addr().String())
	assert.ErrorIs(t, err, syscall.EADDRINUSE)

	d = &sockapi.Dialer{Stack: a, LocalAddr: &net.TCPAddr{IP: addrA.AsSlice(), Port: 40002}}
	_, sc = dialAccept(t, d, ln)
	assert.Equal(t, 40002, sc.RemoteAddr().(*net.TCPAddr).Port)

	pc, err := b.ListenPacket("udp", ":7101")
	require.NoError(t, err)
	defer pc.Close()
	uc, err := (&sockapi.Dialer{Stack: a, LocalAddr: &net.UDPAddr{Port: 40003}}).Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	defer uc.Close()
	_, err = uc.Write([]byte("hi"))
	require.NoError(t, err)
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, from, err := pc.(*sockapi.PacketConn).ReadFromUDPAddrPort(make([]byte, 10))
	require.NoError(t, err)
	assert.Equal(t, netip.AddrPortFrom(addrA, 40003), from)

	_, err = (&sockapi.Dialer{Stack: a, LocalAddr: &net.UDPAddr{Port: 40004}}).Dial("tcp", ln.Addr().String())
	var ae *net.AddrError
	assert.ErrorAs(t, err, &ae)
}

// TestDialerLocalAddrMultiQueue: with two pollers a dial from a given
// port runs on the poller that owns its flow, so the peer's answers,
// wherever they land, reach it: every port connects and carries a byte
// each way.
func TestDialerLocalAddrMultiQueue(t *testing.T) {
	a, b := multiPipeStacks(t, 2)
	ln, err := b.Listen("tcp", ":7102")
	require.NoError(t, err)
	defer ln.Close()
	for port := 40010; port < 40018; port++ {
		d := &sockapi.Dialer{Stack: a, LocalAddr: &net.TCPAddr{Port: port}, Timeout: 5 * time.Second}
		c, sc := dialAccept(t, d, ln)
		assert.Equal(t, port, sc.RemoteAddr().(*net.TCPAddr).Port)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		require.NoError(t, sc.SetDeadline(time.Now().Add(5*time.Second)))
		buf := make([]byte, 1)
		_, err := c.Write([]byte{1})
		require.NoError(t, err)
		_, err = sc.Read(buf)
		require.NoError(t, err, "port %d", port)
		_, err = sc.Write([]byte{2})
		require.NoError(t, err)
		_, err = c.Read(buf)
		require.NoError(t, err, "port %d", port)
	}
}

// TestDialerDeadline: Timeout, Deadline and a context's deadline each
// end a dial to an address nobody answers with os.ErrDeadlineExceeded
// inside a *net.OpError whose Timeout() is true (context.DeadlineExceeded
// matches too, as for Go's net); a cancelled context gives
// context.Canceled.
func TestDialerDeadline(t *testing.T) {
	a, _ := pipeStacks(t)
	const silent = "198.18.0.77:80" // on the link, nobody there
	for name, dial := range map[string]func() error{
		"Timeout": func() error {
			_, err := (&sockapi.Dialer{Stack: a, Timeout: 100 * time.Millisecond}).Dial("tcp", silent)
			return err
		},
		"Deadline": func() error {
			_, err := (&sockapi.Dialer{Stack: a, Deadline: time.Now().Add(100 * time.Millisecond)}).Dial("tcp", silent)
			return err
		},
		"Context": func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := (&sockapi.Dialer{Stack: a, Timeout: time.Hour}).DialContext(ctx, "tcp", silent)
			return err
		},
	} {
		start := time.Now()
		err := dial()
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, name)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe, name)
		assert.Equal(t, "dial", oe.Op)
		assert.True(t, oe.Timeout(), name)
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, name)
		assert.ErrorIs(t, err, context.DeadlineExceeded, name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := (&sockapi.Dialer{Stack: a}).DialContext(ctx, "tcp", silent)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, os.ErrDeadlineExceeded)
}

// TestKeepAliveDefault: as with Go's net, a connection dialled or
// accepted with no keepalive setting (Stack.Dial, Stack.Listen) runs the
// keepalive timer at Go's 15 s; KeepAlive < 0 on either side runs none.
func TestKeepAliveDefault(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":7103")
	require.NoError(t, err)
	defer ln.Close()
	timer := func(c *sockapi.Conn) (string, time.Duration) {
		info, err := c.Info()
		require.NoError(t, err)
		return info.Timer, info.TimerIn
	}
	c, sc := dialAccept(t, &sockapi.Dialer{Stack: a}, ln)
	for _, conn := range []*sockapi.Conn{c, sc} {
		kind, in := timer(conn)
		assert.Equal(t, "keepalive", kind)
		assert.LessOrEqual(t, in, 15*time.Second)
		assert.Greater(t, in, 10*time.Second)
	}

	off, err := (&sockapi.ListenConfig{Stack: b, KeepAlive: -1}).Listen(context.Background(), "tcp", ":7104")
	require.NoError(t, err)
	defer off.Close()
	c, sc = dialAccept(t, &sockapi.Dialer{Stack: a, KeepAlive: -1}, off)
	for _, conn := range []*sockapi.Conn{c, sc} {
		kind, _ := timer(conn)
		assert.Equal(t, "", kind)
	}
}

// TestKeepAliveProbes: with a short KeepAliveConfig, an idle connection
// sends probes, dialled and accepted alike (its segment count grows with
// nothing written, and the peer answers them), while a connection
// dialled with KeepAlive < 0 beside it sends nothing in that time.
func TestKeepAliveProbes(t *testing.T) {
	a, b := pipeStacks(t)
	short := net.KeepAliveConfig{Enable: true, Idle: 20 * time.Millisecond, Interval: 20 * time.Millisecond}
	ln, err := (&sockapi.ListenConfig{Stack: b, KeepAliveConfig: short}).Listen(context.Background(), "tcp", ":7105")
	require.NoError(t, err)
	defer ln.Close()
	plain, err := (&sockapi.ListenConfig{Stack: b, KeepAlive: -1}).Listen(context.Background(), "tcp", ":7106")
	require.NoError(t, err)
	defer plain.Close()

	probing, accepted := dialAccept(t, &sockapi.Dialer{Stack: a, KeepAliveConfig: short}, ln)
	quiet, _ := dialAccept(t, &sockapi.Dialer{Stack: a, KeepAlive: -1}, plain)
	info := func(c *sockapi.Conn) sockapi.TCPInfo {
		i, err := c.Info()
		require.NoError(t, err)
		return i
	}
	quiet0, probing0, accepted0 := info(quiet), info(probing), info(accepted)
	deadline := time.Now().Add(10 * time.Second)
	for info(probing).SegsOut < probing0.SegsOut+3 || info(accepted).SegsOut < accepted0.SegsOut+3 {
		require.True(t, time.Now().Before(deadline), "three probes each way within 10 s")
		time.Sleep(5 * time.Millisecond)
	}
	p := info(probing)
	assert.Zero(t, p.DataSegsOut-probing0.DataSegsOut, "probes carry no new data")
	assert.Greater(t, p.SegsIn, probing0.SegsIn, "the peer answers")
	q := info(quiet)
	assert.Equal(t, quiet0.SegsOut, q.SegsOut, "KeepAlive < 0: no probe")
	assert.Equal(t, "", q.Timer)
	require.NoError(t, probing.SetReadDeadline(time.Now().Add(time.Millisecond)))
	_, err = probing.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the answered probes keep the connection up")
}

// TestDialerControl: Control sees the network and address and sets the
// socket's options before the connection exists: the congestion control,
// and a 4 KiB receive buffer, which the peer sees as the window from the
// start; its error fails the dial. A ListenConfig's Control sets the
// accepted connections'. On a UDP socket the buffers apply and the TCP
// options fail with ENOPROTOOPT.
func TestDialerControl(t *testing.T) {
	a, b := pipeStacks(t)
	lc := &sockapi.ListenConfig{Stack: b, Control: func(network, address string, o *sockapi.SocketOptions) error {
		assert.Equal(t, "tcp4", network)
		assert.Equal(t, ":7107", address)
		return o.SetCongestionControl(sockapi.Reno)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", ":7107")
	require.NoError(t, err)
	defer ln.Close()
	d := &sockapi.Dialer{Stack: a, Control: func(network, address string, o *sockapi.SocketOptions) error {
		assert.Equal(t, "tcp4", network)
		assert.Equal(t, ln.Addr().String(), address)
		assert.ErrorIs(t, o.SetCongestionControl("bbr"), syscall.ENOENT)
		assert.ErrorIs(t, o.SetReadBuffer(0), syscall.EINVAL)
		require.NoError(t, o.SetNoDelay(false))
		require.NoError(t, o.SetReadBuffer(4096))
		return o.SetCongestionControl(sockapi.Reno)
	}}
	c, sc := dialAccept(t, d, ln)
	for _, conn := range []*sockapi.Conn{c, sc} {
		cc, err := conn.CongestionControl()
		require.NoError(t, err)
		assert.Equal(t, sockapi.Reno, cc)
	}
	info, err := sc.Info()
	require.NoError(t, err)
	assert.LessOrEqual(t, info.SndWnd, uint32(4096), "the dialled end's window, as its buffer")
	assert.NotZero(t, info.SndWnd)

	refuse := errors.New("no")
	_, err = (&sockapi.Dialer{Stack: a, Control: func(string, string, *sockapi.SocketOptions) error { return refuse }}).Dial("tcp", ln.Addr().String())
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.ErrorIs(t, err, refuse)

	pc, err := (&sockapi.ListenConfig{Stack: b, Control: func(network, _ string, o *sockapi.SocketOptions) error {
		assert.Equal(t, "udp4", network)
		assert.ErrorIs(t, o.SetNoDelay(true), syscall.ENOPROTOOPT)
		assert.ErrorIs(t, o.SetKeepAlive(true), syscall.ENOPROTOOPT)
		return o.SetReadBuffer(1000)
	}}).ListenPacket(context.Background(), "udp", ":7108")
	require.NoError(t, err)
	defer pc.Close()
}

// TestDialerLate: a dial whose deadline has passed already (a negative
// Timeout, as Go's net allows) fails with os.ErrDeadlineExceeded before
// it starts; so does one with a cancelled context, with context.Canceled.
func TestDialerLate(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":7109")
	require.NoError(t, err)
	defer ln.Close()
	_, err = (&sockapi.Dialer{Stack: a, Timeout: -time.Second}).Dial("tcp", ln.Addr().String())
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = (&sockapi.Dialer{Stack: a}).DialContext(ctx, "tcp", ln.Addr().String())
	assert.ErrorIs(t, err, context.Canceled)
}
