package sockapi_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// listenICMP opens an echo socket on s, closed at the test's end.
func listenICMP(t testing.TB, s *sockapi.Stack, address string) *sockapi.ICMPConn {
	t.Helper()
	pc, err := s.ListenPacket("ip4:icmp", address)
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc.(*sockapi.ICMPConn)
}

// echoRequest marshals an echo request with x/net/icmp.
func echoRequest(t testing.TB, id, seq int, data string) []byte {
	t.Helper()
	b, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte(data)}}).Marshal(nil)
	require.NoError(t, err)
	return b
}

// readEcho reads c's next message, within a bound, and parses it as an
// echo reply from want.
func readEcho(t testing.TB, c *sockapi.ICMPConn, want netip.Addr) *icmp.Echo {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, want.String(), from.String())
	m, err := icmp.ParseMessage(1, buf[:n])
	require.NoError(t, err)
	require.Equal(t, ipv4.ICMPTypeEchoReply, m.Type)
	return m.Body.(*icmp.Echo)
}

// TestICMPEchoPipe: two echo sockets on stack A ping stack B. Each gets
// its own identifier, written over the app's, and reads only the replies
// to its own requests, whole.
func TestICMPEchoPipe(t *testing.T) {
	a, _ := pipeStacks(t)
	c1, c2 := listenICMP(t, a, ""), listenICMP(t, a, addrA.String())
	require.NotEqual(t, c1.ID(), c2.ID())
	require.Equal(t, "198.18.0.2", c1.LocalAddr().String())

	// The app's identifier, 1, is outside the ephemeral range the
	// stack picks from: the reply's shows it was overwritten.
	_, err := c1.WriteTo(echoRequest(t, 1, 10, "one"), &net.IPAddr{IP: addrB.AsSlice()})
	require.NoError(t, err)
	_, err = c2.WriteToAddr(echoRequest(t, 1, 20, "two"), addrB)
	require.NoError(t, err)
	e1, e2 := readEcho(t, c1, addrB), readEcho(t, c2, addrB)
	require.Equal(t, &icmp.Echo{ID: int(c1.ID()), Seq: 10, Data: []byte("one")}, e1)
	require.Equal(t, &icmp.Echo{ID: int(c2.ID()), Seq: 20, Data: []byte("two")}, e2)

	// Neither saw the other's reply: both queues are empty now.
	for _, c := range []*sockapi.ICMPConn{c1, c2} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, _, err := c.ReadFrom(make([]byte, 100))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	}
}

// TestICMPEchoErrors: what a ping socket refuses, and Close and deadlines
// as a UDP socket's.
func TestICMPEchoErrors(t *testing.T) {
	a, _ := pipeStacks(t)
	_, err := a.ListenPacket("ip4:icmp", "198.18.0.9")
	require.ErrorIs(t, err, syscall.EADDRNOTAVAIL)
	_, err = a.ListenPacket("ip4:icmp", "nonsense")
	require.Error(t, err)

	c := listenICMP(t, a, "0.0.0.0")
	reply, err := (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 1, Seq: 1}}).Marshal(nil)
	require.NoError(t, err)
	_, err = c.WriteToAddr(reply, addrB)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = c.WriteTo(echoRequest(t, 1, 1, ""), &net.TCPAddr{IP: addrB.AsSlice()})
	require.ErrorIs(t, err, syscall.EINVAL)

	require.NoError(t, c.SetWriteDeadline(time.Now().Add(-time.Second)))
	_, err = c.WriteToAddr(echoRequest(t, 1, 1, ""), addrB)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// A blocked read ends with Close.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 100))
		done <- err
	}()
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after Close")
	}
	_, err = c.WriteToAddr(echoRequest(t, 1, 1, ""), addrB)
	require.ErrorIs(t, err, net.ErrClosed)
}

// TestICMPEchoLab pings the kernel peer over AF_XDP with x/net/icmp
// messages: the kernel's replies come back to the socket, matched to its
// identifier, with the request's sequence numbers and data.
func TestICMPEchoLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	c := listenICMP(t, s, "")
	peer := l.Peer.Addr.Addr()
	for seq := range 3 {
		data := string(make([]byte, 56)) + "xdpnet"
		_, err := c.WriteTo(echoRequest(t, 7, seq, data), &net.IPAddr{IP: peer.AsSlice()})
		require.NoError(t, err)
		require.Equal(t, &icmp.Echo{ID: int(c.ID()), Seq: seq, Data: []byte(data)}, readEcho(t, c, peer))
	}
}

// TestICMPEchoAddrAllocs: a ping and its reply through WriteToAddr and
// ReadFromAddr allocate nothing, in the app or in either stack.
func TestICMPEchoAddrAllocs(t *testing.T) {
	a, _ := pipeStacks(t)
	c := listenICMP(t, a, "")
	req, buf := echoRequest(t, 1, 1, "ping"), make([]byte, 1500)
	round := func() {
		if _, err := c.WriteToAddr(req, addrB); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromAddr(buf); err != nil {
			t.Fatal(err)
		}
	}
	round()
	require.Zero(t, testing.AllocsPerRun(500, round))
}
