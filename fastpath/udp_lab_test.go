package fastpath_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/udp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// datagram is the content of datagram i: a sequence number, then bytes
// derived from it, 1..1472 bytes long (the largest payload at MTU 1500).
func datagram(i int) []byte {
	p := make([]byte, 1+i%1472)
	for j := range p {
		p[j] = byte(i*7 + j*13)
	}
	if len(p) >= 4 {
		binary.BigEndian.PutUint32(p, uint32(i))
	}
	return p
}

// kernelUDP opens a UDP socket in the peer's namespace.
func kernelUDP(t *testing.T, l *lab.Lab, laddr, raddr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	require.NoError(t, l.Peer.Do(func() (err error) {
		if raddr.IsValid() {
			c, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(laddr), net.UDPAddrFromAddrPort(raddr))
		} else {
			c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(laddr))
		}
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

// TestUDPExchangeWithKernel sends 10,000 datagrams of every size from 1 to
// 1472 bytes from a kernel socket to an xdpnet endpoint, which sends each
// back, 16 in flight; the kernel checks every echo byte for byte against
// the datagram it sent, so every byte is checked across both directions.
// Echoes may overtake each other: veth hands a frame to its peer through
// the backlog of the CPU that sent it, and the poller's thread may move
// between CPUs from one batch to the next (UDP promises no order anyway).
// Each echo must match exactly one datagram still in flight.
func TestUDPExchangeWithKernel(t *testing.T) {
	const total, window = 10000, 16
	l := lab.New(t, lab.Config{})
	var ep *udp.Endpoint
	var bad atomic.Value
	var received atomic.Int64
	buf := make([]byte, 2048)
	setup := func(p *fastpath.Poller) {
		var err error
		ep, err = p.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
		require.NoError(t, err)
	}
	startStack(t, l, steer.Native, setup, func(p *fastpath.Poller, now time.Duration) {
		for {
			n, from, err := ep.ReadFrom(buf)
			if err != nil {
				return // udp.ErrWouldBlock: nothing queued
			}
			received.Add(1)
			if _, err := ep.WriteTo(buf[:n], from); err != nil {
				bad.Store(fmt.Sprintf("echo of a %d-byte datagram: %v", n, err))
			}
		}
	})
	c := kernelUDP(t, l, netip.AddrPort{}, netip.AddrPortFrom(l.StackAddr, 5000))
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	echo := make([]byte, 2048)
	var inFlight []int // indexes of the datagrams sent and not yet echoed
	sent := 0
	for got := 0; got < total; got++ {
		for ; sent < total && len(inFlight) < window; sent++ {
			_, err := c.Write(datagram(sent))
			require.NoError(t, err)
			inFlight = append(inFlight, sent)
		}
		n, err := c.Read(echo)
		require.NoError(t, err, "echo %d of %d", got, total)
		// Within a window every datagram has its own size, so at most one
		// can match.
		match := slices.IndexFunc(inFlight, func(i int) bool { return bytes.Equal(datagram(i), echo[:n]) })
		require.GreaterOrEqual(t, match, 0, "a %d-byte echo matches no datagram in flight %v", n, inFlight)
		inFlight = slices.Delete(inFlight, match, match+1)
	}
	assert.Nil(t, bad.Load())
	assert.EqualValues(t, total, received.Load())
}

// TestResolvesKernelAndQueues: the stack sends to the kernel before it
// knows its MAC; it resolves it by ARP itself, and the datagrams queued
// meanwhile arrive, in order, once the reply is in.
func TestResolvesKernelAndQueues(t *testing.T) {
	const burst = 5
	l := lab.New(t, lab.Config{})
	peer := netip.AddrPortFrom(l.Peer.Addr.Addr(), 6000)
	c := kernelUDP(t, l, peer, netip.AddrPort{})
	// The datagrams are queued before the poller runs: its first Poll finds
	// them with an empty neighbour cache.
	s := startStack(t, l, steer.Native, func(p *fastpath.Poller) {
		ep, err := p.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5001))
		require.NoError(t, err)
		for i := range burst {
			_, err := ep.WriteTo(datagram(i), peer)
			require.NoError(t, err)
		}
	}, nil)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 2048)
	for i := range burst {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		require.NoError(t, err, "datagram %d", i)
		assert.Equal(t, datagram(i), buf[:n], "datagram %d", i)
		assert.Equal(t, netip.AddrPortFrom(l.StackAddr, 5001), from)
	}
	s.stop()
	st := s.ARP().Stats()
	assert.GreaterOrEqual(t, st.RequestsOut, uint64(1), "the stack asked for the kernel's MAC")
	assert.GreaterOrEqual(t, st.Queued, uint64(burst), "the datagrams waited for the reply")
	assert.Zero(t, st.QueueDrops)
}

// TestClosedPortRefuses: a datagram to a port nobody bound draws an ICMP
// port unreachable, which the kernel's connected socket reports as
// ECONNREFUSED.
func TestClosedPortRefuses(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := startStack(t, l, steer.Native, nil, nil)
	c := kernelUDP(t, l, netip.AddrPort{}, netip.AddrPortFrom(l.StackAddr, 4444))
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := c.Write([]byte("anyone there?"))
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 64))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "got %v", err)
	s.stop()
	assert.EqualValues(t, 1, s.UDP().Stats().NoPorts)
	assert.EqualValues(t, 1, s.IP().Stats().ICMP.OutDestUnreachs)
}
