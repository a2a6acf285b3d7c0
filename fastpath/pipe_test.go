package fastpath_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
)

var (
	stackAddr = netip.MustParseAddr("198.18.0.2")
	peerAddr  = netip.MustParseAddr("198.18.0.3")
)

// pipeStack is a poller on one end of an in-memory pipe; the test plays
// the peer on the other end, in virtual time.
type pipeStack struct {
	*fastpath.Poller
	peer *nic.Pipe
	now  time.Duration
}

func newPipeStack(t testing.TB) *pipeStack {
	a, b := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	p, err := fastpath.New(fastpath.Config{Link: a, IP: ip.Config{Addr: netip.PrefixFrom(stackAddr, 24)}})
	require.NoError(t, err)
	s := &pipeStack{Poller: p, peer: b}
	s.poll(t) // the start-up announcement
	s.collect(t)
	return s
}

// send transmits frames from the peer and runs one Poll.
func (s *pipeStack) send(t testing.TB, frames ...[]byte) {
	t.Helper()
	for len(frames) > 0 {
		fs := make([]nic.Frame, min(len(frames), 64))
		n := s.peer.Alloc(fs)
		require.NotZero(t, n, "the peer is out of buffers")
		for i := range n {
			fs[i].Data = fs[i].Data[:copy(fs[i].Data, frames[i])]
		}
		m, err := s.peer.Transmit(fs[:n])
		require.NoError(t, err)
		require.Equal(t, n, m)
		frames = frames[n:]
		s.poll(t)
	}
}

func (s *pipeStack) poll(t testing.TB) {
	t.Helper()
	s.now += time.Millisecond
	_, err := s.Poll(s.now)
	require.NoError(t, err)
}

// collect returns copies of the frames the stack sent.
func (s *pipeStack) collect(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	fs := make([]nic.Frame, 64)
	for {
		n, err := s.peer.Receive(fs)
		require.NoError(t, err)
		if n == 0 {
			return out
		}
		for _, f := range fs[:n] {
			out = append(out, append([]byte(nil), f.Data...))
		}
		s.peer.Release(fs[:n])
	}
}

// ipv4 builds a frame from the peer to the stack carrying an IPv4 packet
// of protocol proto with payload.
func (s *pipeStack) ipv4(proto uint8, payload []byte) []byte {
	b := make([]byte, wire.EthernetLen+wire.IPv4MinLen+len(payload))
	wire.Ethernet(b).Encode(s.Link().MAC(), s.peer.MAC(), wire.EtherTypeIPv4)
	copy(b[wire.EthernetLen+wire.IPv4MinLen:], payload)
	wire.IPv4Fields{TotalLen: wire.IPv4MinLen + len(payload), ID: 1, Protocol: proto, Src: peerAddr, Dst: stackAddr}.Encode(b[wire.EthernetLen:])
	return b
}

func (s *pipeStack) echoRequest(seq uint16, data []byte) []byte {
	m := make([]byte, wire.ICMPHeaderLen+len(data))
	copy(m[wire.ICMPHeaderLen:], data)
	wire.ICMPFields{Type: wire.ICMPEcho, Rest: 0x4242<<16 | uint32(seq)}.Encode(m)
	return s.ipv4(wire.ProtoICMP, m)
}

// arpReply is the peer's ARP reply to the stack's request.
func (s *pipeStack) arpReply() []byte {
	b := make([]byte, wire.EthernetLen+wire.ARPLen)
	wire.Ethernet(b).Encode(s.Link().MAC(), s.peer.MAC(), wire.EtherTypeARP)
	wire.ARPFields{Op: wire.ARPReply, SenderMAC: s.peer.MAC(), SenderIP: peerAddr, TargetMAC: s.Link().MAC(), TargetIP: stackAddr}.Encode(b[wire.EthernetLen:])
	return b
}

// TestPingOverPipe: an echo request gets its reply byte for byte, after
// the stack resolved the peer by ARP.
func TestPingOverPipe(t *testing.T) {
	s := newPipeStack(t)
	s.send(t, s.echoRequest(1, []byte("ping over a pipe")))
	out := s.collect(t)
	require.Len(t, out, 1, "an ARP request for the peer, the reply waiting")
	arpReq := wire.ARP(wire.Ethernet(out[0]).Payload())
	require.NoError(t, arpReq.Check())
	assert.Equal(t, peerAddr, arpReq.TargetIP())

	s.send(t, s.arpReply())
	out = s.collect(t)
	require.Len(t, out, 1, "the queued echo reply")
	e := wire.Ethernet(out[0])
	assert.Equal(t, s.peer.MAC(), e.Dst())
	p := wire.IPv4(e.Payload())
	require.NoError(t, p.Check())
	assert.True(t, p.ChecksumValid())
	assert.Equal(t, peerAddr, p.Dst())
	m := wire.ICMP(p.Payload())
	assert.True(t, m.ChecksumValid())
	assert.EqualValues(t, wire.ICMPEchoReply, m.Type())
	assert.EqualValues(t, 0x4242, m.ID())
	assert.EqualValues(t, 1, m.Seq())
	assert.Equal(t, "ping over a pipe", string(m.Payload()))
}

// TestBadFramesAreCountedAndDropped feeds the stack malformed frames of
// every kind: each is dropped and counted where it failed, and nothing is
// sent in reply.
func TestBadFramesAreCountedAndDropped(t *testing.T) {
	s := newPipeStack(t)
	good := s.echoRequest(1, make([]byte, 32))
	mod := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	ip := func(b []byte) []byte { return b[wire.EthernetLen:] }
	// (A frame shorter than its Ethernet header cannot cross the pipe, as
	// it cannot cross a wire; FuzzInput covers it.)
	s.send(t,
		mod(func(b []byte) { ip(b)[10] ^= 0xff }),                                          // bad header checksum
		mod(func(b []byte) { ip(b)[0] = 0x44 }),                                            // IHL < 5
		mod(func(b []byte) { ip(b)[0] = 0x65 }),                                            // version 6
		mod(func(b []byte) { ip(b)[2], ip(b)[3] = 0x05, 0xdc }),                            // total length beyond the frame
		good[:wire.EthernetLen+wire.IPv4MinLen-1],                                          // truncated IPv4 header
		mod(func(b []byte) { copy(ip(b)[16:20], []byte{9, 9, 9, 9}); fixChecksum(ip(b)) }), // not our address
	)
	st := s.IP().Stats().IP
	assert.EqualValues(t, 5, st.InHdrErrors, "checksum, IHL, version, total length, truncation")
	assert.EqualValues(t, 1, st.InCsumErrors)
	assert.EqualValues(t, 1, st.InAddrErrors)

	// Not ours at the link layer, and not a protocol we speak.
	other := mod(func(b []byte) { copy(b[0:6], net.HardwareAddr{2, 9, 9, 9, 9, 9}) })
	ipv6 := mod(func(b []byte) { b[12], b[13] = 0x86, 0xdd })
	badARP := make([]byte, wire.EthernetLen+10)
	wire.Ethernet(badARP).Encode(wire.BroadcastMAC, s.peer.MAC(), wire.EtherTypeARP)
	s.send(t, other, ipv6, badARP)
	assert.EqualValues(t, 1, s.Stats().RxOtherHost)
	assert.EqualValues(t, 1, s.Stats().RxOtherType)
	assert.EqualValues(t, 1, s.Stats().RxBadFrames, "the truncated ARP packet")
	assert.Empty(t, s.collect(t), "nothing answers malformed input")
}

// TestFloodsStayBounded: 20,000 random fragments and 20,000 ARP requests
// from random senders leave the stack within its memory bounds and still
// answering.
func TestFloodsStayBounded(t *testing.T) {
	s := newPipeStack(t)
	rng := rand.New(rand.NewPCG(3, 4))
	var frames [][]byte
	for i := range 20000 {
		f := s.ipv4(wire.ProtoUDP, make([]byte, 8+rng.IntN(64)*8))
		h := wire.IPv4(f[wire.EthernetLen:])
		h[4], h[5] = byte(rng.Uint32()), byte(rng.Uint32())      // identification
		h[6], h[7] = 0x20|byte(rng.IntN(32)), byte(rng.Uint32()) // MF and an offset
		fixChecksum(h)
		frames = append(frames, f)
		if i%2 == 0 {
			a := make([]byte, wire.EthernetLen+wire.ARPLen)
			mac := net.HardwareAddr{2, byte(i >> 16), byte(i >> 8), byte(i), 1, 1}
			wire.Ethernet(a).Encode(wire.BroadcastMAC, mac, wire.EtherTypeARP)
			sender := netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(2)), byte(1 + rng.IntN(250))})
			wire.ARPFields{Op: wire.ARPRequest, SenderMAC: mac, SenderIP: sender, TargetIP: stackAddr}.Encode(a[wire.EthernetLen:])
			frames = append(frames, a)
		}
	}
	s.send(t, frames...)
	s.collect(t)
	st := s.IP().Stats().IP
	assert.EqualValues(t, 20000, st.ReasmReqds, "every fragment went to reassembly")
	entries := 0
	s.ARP().Entries(s.now, func(arp.Entry) { entries++ })
	assert.LessOrEqual(t, entries, 1024, "the neighbour table stays within its bound")

	s.send(t, s.echoRequest(2, []byte("still there?")))
	out := s.collect(t)
	require.NotEmpty(t, out, "the stack still answers after the floods")
}

// fixChecksum recomputes an IPv4 header's checksum after a test edited it.
func fixChecksum(h []byte) {
	h[10], h[11] = 0, 0
	c := wire.Checksum(h[:wire.IPv4(h).HeaderLen()], 0)
	h[10], h[11] = byte(c>>8), byte(c)
}
