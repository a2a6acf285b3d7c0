package sockapi_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// waitSocket polls s.Sockets until one matches: a bounded wait on the
// state the test expects, which it returns.
func waitSocket(t *testing.T, s *sockapi.Stack, what string, match func(sockapi.Socket) bool) sockapi.Socket {
	t.Helper()
	var socks []sockapi.Socket
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		socks = s.Sockets()
		for _, k := range socks {
			if match(k) {
				return k
			}
		}
	}
	t.Fatalf("no %s among %+v", what, socks)
	return sockapi.Socket{}
}

// tcpSocket matches the TCP socket local→remote in state.
func tcpSocket(local, remote netip.AddrPort, state sockapi.TCPState) func(sockapi.Socket) bool {
	return func(k sockapi.Socket) bool {
		return k.Proto == "tcp" && k.Local == local && k.Remote == remote && k.State == state
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	panic(fmt.Sprintf("%T", a))
}

// TestSockets: Sockets lists a listener with its backlog, an established
// connection from both ends with its unread bytes in Recv-Q and its
// TCPInfo, the TIME_WAIT the active closer keeps, and a UDP socket with
// its queued datagram, each with its addresses and queue.
func TestSockets(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	lport := addrPort(ln.Addr()).Port()
	l := waitSocket(t, b, "listener", tcpSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), lport), netip.AddrPort{}, sockapi.TCPListen))
	assert.Equal(t, sockapi.Socket{Proto: "tcp", Local: l.Local, State: sockapi.TCPListen, SendQ: 4096}, l,
		"no connection waits; Send-Q is the backlog")

	client, server := connPair(t, a, ln, addrPort(ln.Addr()))
	cl, sv := addrPort(client.LocalAddr()), addrPort(server.LocalAddr())
	require.Equal(t, sv, addrPort(client.RemoteAddr()))
	_, err = client.Write([]byte("unread"))
	require.NoError(t, err)
	k := waitSocket(t, b, "server's connection with 6 bytes unread", func(k sockapi.Socket) bool {
		return tcpSocket(sv, cl, sockapi.TCPEstablished)(k) && k.RecvQ == 6
	})
	assert.Zero(t, k.SendQ)
	require.NotNil(t, k.TCP)
	assert.Equal(t, sockapi.TCPEstablished, k.TCP.State)
	assert.Equal(t, uint64(6), k.TCP.BytesReceived)
	k = waitSocket(t, a, "client's connection, all acknowledged", func(k sockapi.Socket) bool {
		return tcpSocket(cl, sv, sockapi.TCPEstablished)(k) && k.SendQ == 0
	})
	require.NotNil(t, k.TCP)
	assert.Equal(t, uint64(6), k.TCP.BytesAcked)
	assert.Positive(t, k.TCP.RTT)

	// The client closes first: it keeps the TIME_WAIT, its timer running
	// and nothing queued.
	c2, s2 := connPair(t, a, ln, addrPort(ln.Addr()))
	cl2 := addrPort(c2.LocalAddr())
	require.NoError(t, c2.Close())
	waitSocket(t, b, "server's CLOSE_WAIT", tcpSocket(sv, cl2, sockapi.TCPCloseWait))
	require.NoError(t, s2.Close())
	k = waitSocket(t, a, "client's TIME_WAIT", tcpSocket(cl2, sv, sockapi.TCPTimeWait))
	assert.Zero(t, k.RecvQ+k.SendQ)
	require.NotNil(t, k.TCP)
	assert.Equal(t, "time-wait", k.TCP.Timer)

	// UDP: an unconnected socket (CLOSE) with a datagram waiting, and a
	// connected one (ESTABLISHED).
	pc, err := a.ListenPacket("udp", ":0")
	require.NoError(t, err)
	defer pc.Close()
	uport := addrPort(pc.LocalAddr()).Port()
	uc, err := b.Dial("udp", netip.AddrPortFrom(addrA, uport).String())
	require.NoError(t, err)
	defer uc.Close()
	_, err = uc.Write([]byte("datagram"))
	require.NoError(t, err)
	k = waitSocket(t, a, "UDP socket with a datagram", func(k sockapi.Socket) bool {
		return k.Proto == "udp" && k.Local.Port() == uport && k.RecvQ == 8
	})
	assert.Equal(t, sockapi.Socket{Proto: "udp", Local: netip.AddrPortFrom(netip.IPv4Unspecified(), uport),
		State: sockapi.TCPClose, RecvQ: 8}, k)
	k = waitSocket(t, b, "connected UDP socket", func(k sockapi.Socket) bool {
		return k.Proto == "udp" && k.Remote == netip.AddrPortFrom(addrA, uport)
	})
	assert.Equal(t, sockapi.TCPEstablished, k.State)
	assert.Nil(t, k.TCP)
}

// TestSocketsListenerQueue: a listener's Recv-Q counts the connections
// established and not accepted, as Linux's does.
func TestSocketsListenerQueue(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	for range 2 {
		c, err := a.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	waitSocket(t, b, "listener with 2 waiting", func(k sockapi.Socket) bool {
		return k.State == sockapi.TCPListen && k.RecvQ == 2
	})
}

// TestNeighbors: after an exchange the peer is in the cache with its MAC,
// REACHABLE or STALE; a dial to a dead on-link address leaves it FAILED,
// with no MAC (after 3 s, as TestDialDeadNeighbour).
func TestNeighbors(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	connPair(t, a, ln, addrPort(ln.Addr()))
	var peer []sockapi.Neighbor
	for _, n := range a.Neighbors() {
		if n.IP == addrB {
			peer = append(peer, n)
		}
	}
	require.Len(t, peer, 1, "one queue, one entry")
	assert.Contains(t, []string{"REACHABLE", "STALE"}, peer[0].State)
	assert.Equal(t, "02:00:00:00:00:02", peer[0].MAC.String(), "pipe end B's")
	assert.Zero(t, peer[0].Queue)

	const dead = "198.18.0.77"
	_, err = a.Dial("tcp", dead+":80")
	require.Error(t, err)
	var failed *sockapi.Neighbor
	for _, n := range a.Neighbors() {
		if n.IP == netip.MustParseAddr(dead) {
			failed = &n
		}
	}
	require.NotNil(t, failed, "the dead neighbour is listed")
	assert.Equal(t, "FAILED", failed.State)
	assert.Nil(t, failed.MAC)
}

// After Close, Sockets and Neighbors read what the stack kept, on the
// caller's goroutine, instead of waiting for pollers that stopped.
func TestSocketsAfterClose(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	client, _ := connPair(t, a, ln, addrPort(ln.Addr()))
	require.NoError(t, a.Close())
	socks := a.Sockets()
	require.Len(t, socks, 1, "the connection Close left closing")
	assert.Equal(t, addrPort(client.LocalAddr()), socks[0].Local)
	var ips []netip.Addr
	for _, n := range a.Neighbors() {
		ips = append(ips, n.IP)
	}
	assert.Contains(t, ips, addrB)
}

// manyConns returns two pipe stacks joined by n connections, from a to
// a listener on b, with 4 KiB buffers so that many cost little memory
// (the send buffer may be set up to the default, 128 KiB).
func manyConns(b *testing.B, n int, adminSocket string) (sa, sb *sockapi.Stack, ln net.Listener) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	cfg := sockapi.Config{SendBuffer: 4 << 10, RecvBuffer: 4 << 10, SendBufferMax: 128 << 10}
	cfg.Addr = netip.PrefixFrom(addrA, 24)
	cfg.AdminSocket = adminSocket
	sa, err := sockapi.New(cfg, la)
	require.NoError(b, err)
	cfg.Addr, cfg.AdminSocket = netip.PrefixFrom(addrB, 24), ""
	sb, err = sockapi.New(cfg, lb)
	require.NoError(b, err)
	b.Cleanup(func() {
		sa.Close()
		sb.Close()
	})
	ln, err = sb.Listen("tcp", ":0")
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	for range n {
		connPair(b, sa, ln, addrPort(ln.Addr()))
	}
	return sa, sb, ln
}

// BenchmarkSockets: Sockets on a stack with 1,000 connections and a
// listener, the caller's cost of a call (the poller's share is the copy
// within it).
func BenchmarkSockets(b *testing.B) {
	_, sb, _ := manyConns(b, 1000, "")
	require.Len(b, sb.Sockets(), 1001)
	b.ReportAllocs()
	for b.Loop() {
		sb.Sockets()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1001, "ns/socket")
	var held time.Duration
	const holds = 100
	for range holds {
		held += sockapi.SocketsHold(sb)
	}
	b.ReportMetric(float64(held.Nanoseconds())/holds, "poller-held-ns/op")
}

// BenchmarkSocketsUnderLoad: a bulk transfer beside 1,000 idle
// connections, with a reader calling Sockets on both stacks every
// interval (none: no reader). The throughputs compare what a reader
// costs a loaded poller.
func BenchmarkSocketsUnderLoad(b *testing.B) {
	sa, sb, ln := manyConns(b, 1000, "")
	for _, every := range []time.Duration{0, 100 * time.Millisecond, 10 * time.Millisecond, time.Millisecond} {
		name := "reader=none"
		if every > 0 {
			name = "reader=" + every.String()
		}
		b.Run(name, func(b *testing.B) { bulkUnderLoad(b, sa, sb, ln, every) })
	}
}

// bulkUnderLoad is BenchmarkSocketsUnderLoad's run: a bulk transfer from
// sa to ln on sb, beside their idle connections, with Sockets called on
// both every interval (0: never).
func bulkUnderLoad(b *testing.B, sa, sb *sockapi.Stack, ln net.Listener, every time.Duration) {
	client, server := connPair(b, sa, ln, addrPort(ln.Addr()))
	require.NoError(b, client.(*sockapi.Conn).SetWriteBuffer(128<<10), "the default's")
	stop, reads := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		defer func() { reads <- n }()
		if every == 0 {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sa.Sockets()
				sb.Sockets()
				n++
			}
		}
	}()
	streamWrites(b, client, server, 16<<10)
	close(stop)
	b.ReportMetric(float64(<-reads)/b.Elapsed().Seconds(), "reads/s")
	// Losses on the pipe, which a reader that held a poller too
	// long would cause, show as retransmissions and timeouts.
	info, err := client.(*sockapi.Conn).Info()
	require.NoError(b, err)
	b.ReportMetric(float64(info.Retransmits), "retrans")
	b.ReportMetric(float64(info.Timeouts), "timeouts")
}
