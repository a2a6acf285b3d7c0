package sockapi_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

// TestUDPPipe: datagrams both ways between two stacks' sockets, a
// connected socket's Read and Write, a read deadline, and ECONNREFUSED
// on a connected socket whose peer's port is closed.
func TestUDPPipe(t *testing.T) {
	a, b := pipeStacks(t)
	server, err := b.ListenPacket("udp", ":5300")
	require.NoError(t, err)
	defer server.Close()
	go func() { // echo
		buf := make([]byte, 2048)
		for {
			n, from, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			server.WriteTo(buf[:n], from)
		}
	}()
	c, err := a.Dial("udp", server.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 2048)
	for i := range 200 {
		msg := fmt.Sprintf("datagram %d %s", i, make([]byte, i*7))
		_, err := c.Write([]byte(msg))
		require.NoError(t, err)
		n, err := c.Read(buf)
		require.NoError(t, err)
		require.Equal(t, msg, string(buf[:n]))
	}

	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = c.Read(buf)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	closed, err := a.Dial("udp", server.LocalAddr().(*net.UDPAddr).AddrPort().Addr().String()+":5399")
	require.NoError(t, err)
	defer closed.Close()
	closed.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = closed.Write([]byte("anyone?"))
	require.NoError(t, err)
	_, err = closed.Read(buf)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the port unreachable comes back as the next read's error")
}

// TestUDPSteadyStateAllocs: a datagram and its echo through the public
// API cost no allocation on either stack.
func TestUDPSteadyStateAllocs(t *testing.T) {
	a, b := pipeStacks(t)
	server, err := b.ListenPacket("udp", ":5301")
	require.NoError(t, err)
	defer server.Close()
	c, err := a.Dial("udp", server.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	msg, buf := make([]byte, 100), make([]byte, 2048)
	round := func() {
		c.Write(msg)
		n, from, err := server.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		server.WriteTo(buf[:n], from)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	round()
	// The one net.UDPAddr ReadFrom returns (as Go's net does, the address
	// and its IP slice) is all: no allocation per packet in the stack.
	assert.Equal(t, 2.0, testing.AllocsPerRun(200, round))
}

// TestUDPAddrPortAllocs: the netip forms of *net.UDPConn's API
// (ReadMsgUDPAddrPort, WriteToUDPAddrPort, WriteMsgUDPAddrPort,
// ReadFromUDPAddrPort) cost no allocation per datagram, on either stack,
// a round trip through both.
func TestUDPAddrPortAllocs(t *testing.T) {
	server, client := udpPair(t)
	msg, buf := make([]byte, 100), make([]byte, 2048)
	round := func() {
		if _, _, err := client.WriteMsgUDPAddrPort(msg, nil, netip.AddrPort{}); err != nil {
			t.Fatal(err)
		}
		n, _, _, from, err := server.ReadMsgUDPAddrPort(buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := server.WriteToUDPAddrPort(buf[:n], from); err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	round()
	assert.Zero(t, testing.AllocsPerRun(500, round))
}

// BenchmarkUDPAddrPortPipe is a datagram and its echo between two
// stacks over the pipe through the netip forms: -benchmem shows the
// allocations per round trip (none).
func BenchmarkUDPAddrPortPipe(b *testing.B) {
	server, client := udpPair(b)
	msg, buf := make([]byte, 100), make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := client.WriteMsgUDPAddrPort(msg, nil, netip.AddrPort{}); err != nil {
			b.Fatal(err)
		}
		n, _, _, from, err := server.ReadMsgUDPAddrPort(buf, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := server.WriteToUDPAddrPort(buf[:n], from); err != nil {
			b.Fatal(err)
		}
		if _, _, err := client.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// udpPair are a server socket on one stack and a client on the other,
// connected to it, with 5 s deadlines.
func udpPair(t testing.TB) (server, client *sockapi.PacketConn) {
	a, b := pipeStacks(t)
	pc, err := b.ListenPacket("udp", ":5303")
	require.NoError(t, err)
	c, err := a.Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	server, client = pc.(*sockapi.PacketConn), c.(*sockapi.PacketConn)
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	require.NoError(t, server.SetDeadline(time.Now().Add(5*time.Second)))
	require.NoError(t, client.SetDeadline(time.Now().Add(5*time.Second)))
	return server, client
}

// TestUDPConnAPI: the rest of *net.UDPConn's API. A datagram longer
// than the buffer reads cut with MSG_TRUNC in the flags and n the bytes
// copied, as Linux's recvmsg; WriteMsgUDP with no address goes to the
// connected peer, with out-of-band data fails (EOPNOTSUPP); the
// *net.UDPAddr forms carry the same addresses; a read buffer bound drops
// what passes it.
func TestUDPConnAPI(t *testing.T) {
	server, client := udpPair(t)
	clientAddr := client.LocalAddr().(*net.UDPAddr)

	_, _, err := client.WriteMsgUDP([]byte("0123456789"), nil, nil)
	require.NoError(t, err)
	buf := make([]byte, 4)
	n, oobn, flags, from, err := server.ReadMsgUDP(buf, make([]byte, 64))
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Zero(t, oobn)
	assert.Equal(t, syscall.MSG_TRUNC, flags)
	assert.Equal(t, clientAddr.String(), from.String())
	_, err = client.Write([]byte("0123"))
	require.NoError(t, err)
	n, _, flags, _, err = server.ReadMsgUDPAddrPort(buf, nil)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Zero(t, flags, "a datagram that fits is not cut")

	_, err = server.WriteToUDP([]byte("back"), from)
	require.NoError(t, err)
	n, src, err := client.ReadFromUDP(buf)
	require.NoError(t, err)
	assert.Equal(t, "back", string(buf[:n]))
	assert.Equal(t, server.LocalAddr().String(), src.String())

	_, _, err = client.WriteMsgUDPAddrPort([]byte("x"), []byte{1}, netip.AddrPort{})
	assert.ErrorIs(t, err, syscall.EOPNOTSUPP)
	_, _, err = server.WriteMsgUDPAddrPort([]byte("x"), nil, netip.AddrPort{})
	assert.ErrorIs(t, err, syscall.EDESTADDRREQ, "no address on an unconnected socket")
	_, err = server.WriteTo([]byte("x"), &net.TCPAddr{})
	assert.ErrorIs(t, err, syscall.EINVAL)
	var ne *net.OpError
	require.ErrorAs(t, server.SetReadBuffer(0), &ne)
	assert.ErrorIs(t, ne, syscall.EINVAL)

}

// TestUDPReadBuffer: SetReadBuffer(1000) takes two 400-byte datagrams
// and drops the three more that come before the app reads (a datagram
// to another socket of the server's stack, sent after them, shows they
// were all through its poller); after the reads the queue takes more.
func TestUDPReadBuffer(t *testing.T) {
	a, b := pipeStacks(t)
	pc, err := b.ListenPacket("udp", ":5304")
	require.NoError(t, err)
	defer pc.Close()
	server := pc.(*sockapi.PacketConn)
	mpc, err := b.ListenPacket("udp", ":5305")
	require.NoError(t, err)
	defer mpc.Close()
	c, err := a.ListenPacket("udp", ":0")
	require.NoError(t, err)
	defer c.Close()
	client := c.(*sockapi.PacketConn)
	require.NoError(t, server.SetReadBuffer(1000))
	to := server.LocalAddr().(*net.UDPAddr).AddrPort()
	send := func() {
		t.Helper()
		for range 5 {
			_, err := client.WriteToUDPAddrPort(make([]byte, 400), to)
			require.NoError(t, err)
		}
		_, err = client.WriteTo([]byte("marker"), mpc.LocalAddr())
		require.NoError(t, err)
		require.NoError(t, mpc.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, _, err := mpc.ReadFrom(make([]byte, 10))
		require.NoError(t, err)
	}
	buf := make([]byte, 1000)
	for range 2 {
		send()
		require.NoError(t, server.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		for range 2 {
			n, _, err := server.ReadFromUDPAddrPort(buf)
			require.NoError(t, err)
			assert.Equal(t, 400, n)
		}
		_, _, err = server.ReadFromUDPAddrPort(buf)
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the three past the bound were dropped")
	}
}

// TestUDPFragmentedPipe: datagrams larger than the MTU, up to the largest
// IPv4 carries, go between two stacks' sockets in fragments and arrive
// whole; one byte more is EMSGSIZE, as from a Linux UDP socket.
func TestUDPFragmentedPipe(t *testing.T) {
	a, b := pipeStacks(t)
	server, err := b.ListenPacket("udp", ":5302")
	require.NoError(t, err)
	defer server.Close()
	client, err := a.ListenPacket("udp", ":0")
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, server.SetDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 70000)
	for _, size := range []int{8000, 65507} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 13)
		}
		_, err := client.WriteTo(msg, server.LocalAddr())
		require.NoError(t, err, "%d bytes", size)
		n, _, err := server.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, msg, buf[:n], "%d bytes intact", size)
	}
	_, err = client.WriteTo(make([]byte, 65508), server.LocalAddr())
	assert.ErrorIs(t, err, syscall.EMSGSIZE)
}
