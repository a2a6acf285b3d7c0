package fastpath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// TestTCPTransferSurvivesLinkDown: both ends' links go down for a second
// of virtual time in the middle of a 1 MiB transfer each way, Transmit
// saying nic.ErrLinkDown and dropping every frame. No Poll fails (sim.run
// requires it), the pollers count what they sent into the dead link, TCP
// retransmits, every byte arrives, the connection closes cleanly, and
// every transmit buffer is back in its pool.
func TestTCPTransferSurvivesLinkDown(t *testing.T) {
	const size, down = 1 << 20, time.Second
	s := newSim(t, nic.FaultConfig{}, tcp.Config{MSL: simMSL})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	conn, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	up, back := newStream(size, 1), newStream(size, 2)
	client := &peerApp{c: conn, out: up, in: back, first: true}
	server := &peerApp{out: back, in: up}
	downAt, upAt, atDown := time.Duration(-1), time.Duration(-1), 0
	s.run(t, 10*time.Minute, func() bool {
		switch {
		case downAt < 0 && up.received >= size/4:
			downAt, atDown = s.now, up.received
			s.a.faulty.SetDown(true)
			s.b.faulty.SetDown(true)
		case downAt >= 0 && upAt < 0 && s.now >= downAt+down:
			upAt = s.now
			s.a.faulty.SetDown(false)
			s.b.faulty.SetDown(false)
		}
		if server.c == nil {
			if c, err := ln.Accept(); err == nil {
				server.c = c
			}
		}
		client.step(t, true)
		server.step(t, true)
		client.observe(s.now)
		server.observe(s.now)
		return s.a.TCP().Len()+s.b.TCP().Len() == 0
	})
	require.GreaterOrEqual(t, upAt, time.Duration(0), "the link never came back up")
	t.Logf("down at %v (%d of %d bytes across), up at %v, done at %v; client %+v", downAt, atDown, size, upAt, s.now, s.a.TCP().Stats())
	assert.Less(t, atDown, size, "the link went down after the transfer")
	up.check(t, "client to server")
	back.check(t, "server to client")
	client.checkPath(t, "client", true, simMSL)
	server.checkPath(t, "server", false, simMSL)
	for _, n := range []*simNode{s.a, s.b} {
		assert.NotZero(t, n.Stats().TxLinkDown, "frames sent into the down link")
		assert.Equal(t, n.faulty.FaultStats().LinkDown, n.Stats().TxLinkDown, "the poller counts what the link dropped")
		assert.Zero(t, n.Stats().TxErrors)
		assert.NotZero(t, n.TCP().Stats().RetransSegs, "TCP retransmitted what the link dropped")
		assert.Zero(t, n.TCP().Stats().EstabResets, "connections reset")
	}
	s.checkNoLeaks(t)
}
