package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// protoCounter is IPv4 protocol 253, for experiments (RFC 3692).
const protoCounter = 253

// counter is a trivial protocol core with the contract every core offers:
// from its first Output on, it sends a 4-byte count to dst as protocol
// protoCounter every period, limit times. Its timer is its Deadline.
type counter struct {
	dst          netip.Addr
	period, next time.Duration
	sent, limit  uint32
}

func (c *counter) Output(now time.Duration, b []byte) (wire.Out, bool) {
	if c.sent == c.limit || now < c.next {
		return wire.Out{}, false
	}
	binary.BigEndian.PutUint32(b, c.sent)
	c.sent++
	c.next = now + c.period
	return wire.Out{Len: 4, Dst: c.dst, Proto: protoCounter}, true
}

func (c *counter) Deadline() (time.Duration, bool) { return c.next, c.sent < c.limit }

// counterPoller is a poller on one end of a pipe, with the peer (the
// other end) a known neighbour, so nothing waits for ARP.
func counterPoller(t *testing.T) (p *Poller, peer *nic.Pipe, peerIP netip.Addr) {
	return pipePoller(t, tcp.Config{})
}

// pipePoller is counterPoller with a TCP configuration.
func pipePoller(t *testing.T, tc tcp.Config) (p *Poller, peer *nic.Pipe, peerIP netip.Addr) {
	t.Helper()
	a, b := nic.NewPipe(nic.PipeConfig{})
	p, err := New(Config{Link: a, IP: ip.Config{Addr: netip.MustParsePrefix("198.18.0.1/24")}, TCP: tc})
	require.NoError(t, err)
	peerIP = netip.MustParseAddr("198.18.0.2")
	require.NoError(t, p.ARP().AddStatic(0, peerIP, b.MAC()))
	return p, b, peerIP
}

// received returns the counts in the counter packets the peer
// got, checking their headers, and releases every frame.
func received(t *testing.T, peer *nic.Pipe, from, to netip.Addr) []uint32 {
	t.Helper()
	fs := make([]nic.Frame, 64)
	n, err := peer.Receive(fs)
	require.NoError(t, err)
	defer peer.Release(fs[:n])
	var counts []uint32
	for _, f := range fs[:n] {
		e := wire.Ethernet(f.Data)
		require.NoError(t, e.Check())
		if e.Type() != wire.EtherTypeIPv4 {
			continue // the announcement of our address
		}
		h := wire.IPv4(e.Payload())
		require.NoError(t, h.Check())
		require.True(t, h.ChecksumValid())
		require.Equal(t, uint8(protoCounter), h.Protocol())
		require.Equal(t, from, h.Src())
		require.Equal(t, to, h.Dst())
		require.Len(t, h.Payload(), 4)
		counts = append(counts, binary.BigEndian.Uint32(h.Payload()))
	}
	return counts
}

// TestNewCoreByRegistration: a protocol core the poller has never heard
// of joins the output loop by registration alone. The poller writes the
// IPv4 header in front of what it writes at the transport layer, routes
// it to the neighbour, runs it on its timer and parks no longer than
// its deadline.
func TestNewCoreByRegistration(t *testing.T) {
	p, peer, peerIP := counterPoller(t)
	defer p.Close()
	c := &counter{dst: peerIP, period: 10 * time.Millisecond, limit: 3}
	p.register(c, wire.LayerTransport)
	us := p.IP().Addr()

	_, err := p.Poll(0)
	require.NoError(t, err)
	assert.Equal(t, []uint32{0}, received(t, peer, us, peerIP))
	at, ok := p.Deadline()
	require.True(t, ok)
	assert.Equal(t, 10*time.Millisecond, at, "the poller's deadline is the new core's")

	_, err = p.Poll(5 * time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, received(t, peer, us, peerIP), "not due yet")
	for _, now := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
		_, err = p.Poll(now)
		require.NoError(t, err)
	}
	assert.Equal(t, []uint32{1, 2}, received(t, peer, us, peerIP))
	_, ok = p.Deadline()
	assert.False(t, ok, "done: no timer left")
}

// oversized is a core that breaks the contract: at the link layer, its
// packet never fits.
type oversized struct{ asked int }

func (o *oversized) Output(time.Duration, []byte) (wire.Out, bool) {
	o.asked++
	return wire.Out{Len: 1 << 20, EtherType: wire.EtherTypeIPv4}, true
}

func (o *oversized) Deadline() (time.Duration, bool) { return 0, true }

// TestBrokenCoreDoesNotSpin: a core whose packet can never be written is
// asked once a round, and the round ends.
func TestBrokenCoreDoesNotSpin(t *testing.T) {
	p, _, _ := counterPoller(t)
	defer p.Close()
	o := &oversized{}
	p.register(o, wire.LayerLink)
	_, err := p.Poll(0)
	require.NoError(t, err)
	assert.Equal(t, 1, o.asked)
}

// bell counts the news it hears.
type bell struct{ rung int }

func (b *bell) Notify() bool { b.rung++; return false }

// TestTimerNewsToldInItsRound: the timers run in output now, and what they
// end (a dial whose SYNs went unanswered) reaches the connection's owner
// in the same round, which asks for another at once, for the inline
// hooks.
func TestTimerNewsToldInItsRound(t *testing.T) {
	p, peer, peerIP := pipePoller(t, tcp.Config{SynRetries: 1, InitialRTO: 100 * time.Millisecond})
	defer p.Close()
	c, err := p.TCP().Dial(0, netip.AddrPort{}, netip.AddrPortFrom(peerIP, 9))
	require.NoError(t, err)
	var b bell
	c.Owner = &b
	now := time.Duration(0)
	for c.State() != tcp.Closed {
		require.Less(t, now, 10*time.Second, "the dial never timed out")
		at, ok := p.Deadline()
		require.True(t, ok, "a dial without a timer")
		now = max(now, at)
		_, err := p.Poll(now)
		require.NoError(t, err)
		fs := make([]nic.Frame, 8) // the SYNs, unanswered
		n, err := peer.Receive(fs)
		require.NoError(t, err)
		peer.Release(fs[:n])
	}
	assert.Equal(t, 1, b.rung, "told in the round its timer ended it")
	assert.True(t, p.more, "the next round comes at once")
}
