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

// tcpPair is an established connection between two stacks over a
// pipe, clean unless faults says otherwise, driven by hand in virtual
// time.
type tcpPair struct {
	*sim
	client, server *tcp.Conn
}

func newTCPPair(t testing.TB) *tcpPair { return newTCPPairOver(t, nic.FaultConfig{}, tcp.Config{}) }

func newTCPPairOver(t testing.TB, faults nic.FaultConfig, cfg tcp.Config) *tcpPair {
	s := newSim(t, faults, cfg)
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	client, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	p := &tcpPair{sim: s, client: client}
	for i := 0; i < 10000 && p.server == nil; i++ {
		p.poll()
		p.server, _ = ln.Accept()
	}
	require.NotNil(t, p.server, "handshake over a clean pipe")
	return p
}

// poll runs one round of both pollers, simStep later.
func (p *tcpPair) poll() {
	p.now += simStep
	p.a.Poll(p.now)
	p.b.Poll(p.now)
}

// transfer moves data from the client to the server until the server
// read n bytes, with a bound on rounds; it returns the bytes moved.
func (p *tcpPair) transfer(chunk, buf []byte, n int) int {
	got := 0
	for range 10000 {
		if got >= n {
			break
		}
		p.client.Write(chunk)
		p.poll()
		for {
			m, err := p.server.Read(buf)
			got += m
			if err != nil || m == 0 {
				break
			}
		}
	}
	return got
}

// TestTCPSteadyStateDoesNotAllocate: on an established connection, data
// written, segmented into frames, received, reassembled, read and
// acknowledged costs no allocation on either stack.
func TestTCPSteadyStateDoesNotAllocate(t *testing.T) {
	p := newTCPPair(t)
	chunk, buf := make([]byte, 16<<10), make([]byte, 64<<10)
	require.Equal(t, 1<<20, p.transfer(chunk, buf, 1<<20))
	moved := 0
	allocs := testing.AllocsPerRun(100, func() { moved += p.transfer(chunk, buf, 64<<10) })
	assert.Zero(t, allocs)
	assert.GreaterOrEqual(t, moved, 101*64<<10, "data moved meanwhile")
	assert.Zero(t, p.a.TCP().Stats().RetransSegs, "a clean pipe needs no retransmission")
}

// TestTCPPacedDoesNotAllocate: with pacing on, over a 20 ms round trip,
// the app writes 64 KiB at a time and waits for it to arrive. Each
// write finds cwnd open for all of it, and the pacer sends it in bursts
// of a tenth of cwnd (2 × cwnd/SRTT × 1 ms), holding the connection
// between them: holding it, the pacing timer and the release cost no
// allocation.
func TestTCPPacedDoesNotAllocate(t *testing.T) {
	p := newTCPPairOver(t, nic.FaultConfig{Delay: 10 * time.Millisecond}, tcp.Config{Pacing: true})
	chunk, buf := make([]byte, 64<<10), make([]byte, 64<<10)
	exchange := func() {
		n, err := p.client.Write(chunk)
		require.NoError(t, err)
		for got := 0; got < n; {
			p.poll()
			m, _ := p.server.Read(buf)
			got += m
		}
	}
	for range 20 {
		exchange() // warm-up: cwnd grows to what a write needs
	}
	require.NotZero(t, p.client.Info().PacingRate, "paced")
	allocs := testing.AllocsPerRun(100, exchange)
	assert.Zero(t, allocs)
}

// TestTCPRecoveryDoesNotAllocate: through 1 % loss each way, with SACK
// (the default) on both ends, the recovery path costs no allocation once
// the buffers and the sent-segment records have grown: SACK blocks sent
// and taken, RACK marking losses, PRR sizing the retransmissions, the
// out-of-order data kept and reassembled.
func TestTCPRecoveryDoesNotAllocate(t *testing.T) {
	p := newTCPPairOver(t, nic.FaultConfig{Seed: 7, Loss: 0.01}, tcp.Config{})
	require.True(t, p.client.SACK(), "SACK negotiated")
	chunk, buf := make([]byte, 16<<10), make([]byte, 64<<10)
	require.GreaterOrEqual(t, p.transfer(chunk, buf, 8<<20), 8<<20, "warm-up")
	before := p.client.Info()
	moved := 0
	allocs := testing.AllocsPerRun(100, func() { moved += p.transfer(chunk, buf, 64<<10) })
	after := p.client.Info()
	t.Logf("%d bytes meanwhile: %d recoveries by SACK, %d segments marked lost, %d retransmitted, %.1f allocations a run",
		moved, after.SACKRecoveries-before.SACKRecoveries, after.RACKLost-before.RACKLost, after.Retransmits-before.Retransmits, allocs)
	assert.Zero(t, allocs)
	assert.GreaterOrEqual(t, moved, 101*64<<10, "data moved meanwhile")
	assert.Greater(t, after.SACKRecoveries, before.SACKRecoveries, "recoveries by SACK meanwhile")
	assert.Greater(t, after.RACKLost, before.RACKLost, "losses RACK marked meanwhile")
}

// BenchmarkTCPPipe measures a bulk transfer between two stacks over the
// in-memory pipe: the protocol work per byte, both ends on one goroutine.
func BenchmarkTCPPipe(b *testing.B) {
	p := newTCPPair(b)
	chunk, buf := make([]byte, 64<<10), make([]byte, 64<<10)
	const perOp = 1 << 20
	b.SetBytes(perOp)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if p.transfer(chunk, buf, perOp) < perOp {
			b.Fatal("transfer stalled")
		}
	}
	segs := p.a.TCP().Stats().OutSegs + p.b.TCP().Stats().OutSegs
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(segs), "ns/segment")
}
