package sockapi_test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
