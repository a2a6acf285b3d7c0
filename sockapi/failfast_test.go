package sockapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// A dial to an on-link address nobody answers ARP for fails with
// EHOSTUNREACH once the ARP requests run out (3 at 1 s, as Linux), not
// after the SYN retries, and Timeout() is false, as on Linux; a second
// dial while the neighbour is marked failed fails at once.
func TestDialDeadNeighbour(t *testing.T) {
	a, _ := pipeStacks(t)
	const dead = "198.18.0.77:80"
	start := time.Now()
	_, err := a.Dial("tcp", dead)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, syscall.EHOSTUNREACH)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.False(t, oe.Timeout())
	assert.Equal(t, "dial tcp "+dead+": connect: no route to host", err.Error())
	assert.Less(t, elapsed, 10*time.Second, "the ARP failure, not the SYN retries, ended it")
	t.Logf("dead neighbour: %v after %v", err, elapsed)

	start = time.Now()
	_, err = a.Dial("tcp", netip.MustParseAddrPort(dead).Addr().String()+":81")
	require.ErrorIs(t, err, syscall.EHOSTUNREACH)
	t.Logf("again while it is failed: %v after %v", err, time.Since(start))
}

// A dial off the subnet with no gateway fails at once with ENETUNREACH,
// for TCP and UDP, as Linux's connect.
func TestDialNoRoute(t *testing.T) {
	a, _ := pipeStacks(t)
	for _, network := range []string{"tcp", "udp"} {
		_, err := a.Dial(network, "203.0.113.1:80")
		require.ErrorIs(t, err, syscall.ENETUNREACH, network)
		assert.Equal(t, "dial "+network+" 203.0.113.1:80: connect: network is unreachable", err.Error())
	}
}

// A refused dial reads as Go's net: one "connection refused", after the
// system call's name.
func TestDialRefusedText(t *testing.T) {
	a, _ := pipeStacks(t)
	_, err := a.Dial("tcp", addrB.String()+":9")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, "dial tcp "+addrB.String()+":9: connect: connection refused", err.Error())
}

// After a read has reported the peer's RST, writes fail with EPIPE and
// reads see EOF, as on Linux, which reports a socket's error once.
func TestErrorReportedOnce(t *testing.T) {
	client, server := pipeConns(t)
	require.NoError(t, server.(interface{ SetLinger(int) error }).SetLinger(0))
	require.NoError(t, server.Close()) // linger 0: a RST
	_, err := client.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)
	assert.Contains(t, err.Error(), ": read: connection reset by peer")
	_, err = client.Write([]byte("x"))
	require.ErrorIs(t, err, syscall.EPIPE)
	assert.Contains(t, err.Error(), ": write: broken pipe")
	_, err = client.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF), "read after the error: %v", err)
}

// Open on an interface that does not exist names it.
func TestOpenNoSuchInterface(t *testing.T) {
	_, err := sockapi.Open(sockapi.Config{Interface: "xdpnet-none0", Addr: netip.MustParsePrefix("198.18.0.2/24")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"xdpnet-none0"`)
	assert.Contains(t, err.Error(), "no such network interface")
}

// A failed lookup with Config.Nameserver set names that server, the one
// it asked, not /etc/resolv.conf's.
func TestLookupErrorNamesNameserver(t *testing.T) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	ns := netip.AddrPortFrom(addrB, 53) // nothing listens: port unreachable
	a, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), Nameserver: ns}, la)
	require.NoError(t, err)
	b, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.DialContext(ctx, "tcp", "nothing.invalid.example:80")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, ns.String(), de.Server)
}

// A listen on a port in use reads as Go's net: "bind: address already in
// use", for TCP and UDP.
func TestListenInUseText(t *testing.T) {
	a, _ := pipeStacks(t)
	ln, err := a.Listen("tcp", addrA.String()+":7000")
	require.NoError(t, err)
	defer ln.Close()
	_, err = a.Listen("tcp", addrA.String()+":7000")
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Equal(t, "listen tcp "+addrA.String()+":7000: bind: address already in use", err.Error())
	pc, err := a.ListenPacket("udp", addrA.String()+":7000")
	require.NoError(t, err)
	defer pc.Close()
	_, err = a.ListenPacket("udp", addrA.String()+":7000")
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Equal(t, "listen udp "+addrA.String()+":7000: bind: address already in use", err.Error())
}

// Config.ARPRetries and ARPInterval shape the resolution a dial to a
// dead neighbour waits on: two requests 200 ms apart fail it after about
// 400 ms, not Linux's 3 s.
func TestDialDeadNeighbourConfigured(t *testing.T) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	a, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), ARPRetries: 1, ARPInterval: 200 * time.Millisecond}, la)
	require.NoError(t, err)
	b, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	start := time.Now()
	_, err = a.Dial("tcp", "198.18.0.78:80")
	elapsed := time.Since(start)
	require.ErrorIs(t, err, syscall.EHOSTUNREACH)
	assert.GreaterOrEqual(t, elapsed, 400*time.Millisecond, "two requests and a wait after each")
	assert.Less(t, elapsed, 2500*time.Millisecond, "not the default 3 s")
}
