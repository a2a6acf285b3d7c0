package fastpath_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/nic"
)

// TestSteadyStateDoesNotAllocate: once the peer is resolved, a ping and
// its reply, and a UDP datagram echoed back, cost no allocation anywhere
// on the poller's path.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	s := newPipeStack(t)
	ep, err := s.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 7))
	require.NoError(t, err)
	require.NoError(t, s.ARP().AddStatic(s.now, peerAddr, s.peer.MAC()))
	ping := s.echoRequest(1, make([]byte, 56))
	udpFrame := s.ipv4(wire.ProtoUDP, udpDatagram(40000, 7, make([]byte, 64)))
	buf := make([]byte, 2048)
	in := make([]nic.Frame, 2)
	out := make([]nic.Frame, 8)
	round := func() {
		n := s.peer.Alloc(in)
		in[0].Data = in[0].Data[:copy(in[0].Data, ping)]
		in[1].Data = in[1].Data[:copy(in[1].Data, udpFrame)]
		s.peer.Transmit(in[:n])
		s.now++
		s.Poll(s.now)
		if n, from, err := ep.ReadFrom(buf); err == nil {
			ep.WriteTo(buf[:n], from)
		}
		s.now++
		s.Poll(s.now)
		m, _ := s.peer.Receive(out)
		s.peer.Release(out[:m])
	}
	round()
	assert.Zero(t, testing.AllocsPerRun(1000, round))
	// One round above, and AllocsPerRun's warm-up run plus its 1000.
	assert.EqualValues(t, 1002, s.IP().Stats().ICMP.OutEchoReps, "every ping was answered")
	assert.EqualValues(t, 1002, s.UDP().Stats().OutDatagrams, "every datagram was echoed")
}

// udpDatagram builds a UDP datagram from the peer to the stack.
func udpDatagram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, wire.UDPHeaderLen+len(payload))
	copy(b[wire.UDPHeaderLen:], payload)
	wire.UDPFields{SrcPort: sport, DstPort: dport}.Encode(b, len(payload), peerAddr, stackAddr)
	return b
}

func BenchmarkPollEcho(b *testing.B) {
	s := newPipeStack(b)
	require.NoError(b, s.ARP().AddStatic(s.now, peerAddr, s.peer.MAC()))
	ping := s.echoRequest(1, make([]byte, 56))
	in := make([]nic.Frame, 32)
	out := make([]nic.Frame, 32)
	b.ReportAllocs()
	for b.Loop() {
		n := s.peer.Alloc(in)
		for i := range n {
			in[i].Data = in[i].Data[:copy(in[i].Data, ping)]
		}
		s.peer.Transmit(in[:n])
		s.now++
		s.Poll(s.now)
		m, _ := s.peer.Receive(out)
		s.peer.Release(out[:m])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/ping")
}
