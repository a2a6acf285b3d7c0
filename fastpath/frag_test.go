package fastpath_test

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// payloadOf is n bytes of a pattern that no offset error hides.
func payloadOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestFragmentedUDPOverPipe: UDP datagrams larger than the MTU go from one
// stack to the other in fragments and arrive whole, up to the largest
// datagram there is.
func TestFragmentedUDPOverPipe(t *testing.T) {
	s := newSim(t, nic.FaultConfig{}, tcp.Config{})
	src, err := s.a.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 4000))
	require.NoError(t, err)
	dst, err := s.b.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
	require.NoError(t, err)
	buf := make([]byte, 70000)
	frags, datagrams := uint64(0), uint64(0)
	for _, size := range []int{1473, 3000, 8192, 65507} {
		msg := payloadOf(size)
		_, err := src.WriteTo(msg, netip.AddrPortFrom(peerAddr, 5000))
		require.NoError(t, err, "%d bytes: no EMSGSIZE above the MTU", size)
		n := 0
		s.run(t, s.now+time.Second, func() bool {
			var err error
			n, _, err = dst.ReadFrom(buf)
			return err == nil
		})
		require.Equal(t, msg, buf[:n], "%d bytes arrive intact", size)
		frags += uint64((size + 8 + 1479) / 1480)
		datagrams++
	}
	a, b := s.a.IP().Stats().IP, s.b.IP().Stats().IP
	assert.Equal(t, datagrams, a.FragOKs)
	assert.Equal(t, frags, a.FragCreates, "1480 bytes of data a fragment")
	assert.Equal(t, datagrams, b.ReasmOKs)
	assert.Equal(t, frags, b.ReasmReqds)
	assert.Zero(t, b.ReasmFails)
	_, err = src.WriteTo(make([]byte, 65508), netip.AddrPortFrom(peerAddr, 5000))
	assert.ErrorIs(t, err, syscall.EMSGSIZE, "65,507 bytes at most")
}

// fragmentedPing is an echo request from the peer carrying data, with
// sequence number seq, cut into fragments of 1480 data bytes as Linux cuts
// it at MTU 1500.
func (s *pipeStack) fragmentedPing(seq uint16, data []byte) [][]byte {
	msg := make([]byte, wire.ICMPHeaderLen+len(data))
	copy(msg[wire.ICMPHeaderLen:], data)
	wire.ICMPFields{Type: wire.ICMPEcho, Rest: 0x4242<<16 | uint32(seq)}.Encode(msg)
	var fs [][]byte
	for off := 0; off < len(msg); off += 1480 {
		end := min(off+1480, len(msg))
		f := s.ipv4(wire.ProtoICMP, msg[off:end])
		h := wire.IPv4(f[wire.EthernetLen:])
		frag := uint16(off / 8)
		if end < len(msg) {
			frag |= 0x2000 // MF
		}
		h[6], h[7] = byte(frag>>8), byte(frag)
		fixChecksum(h)
		fs = append(fs, f)
	}
	return fs
}

// TestFragmentedPingOverPipe: a 3,000-byte echo request in fragments, as
// `ping -s 2992` sends it, is answered with the whole reply in fragments,
// which wait in the neighbour's queue while ARP resolves the peer; the
// peer's own ip layer reassembles them into the request's data.
func TestFragmentedPingOverPipe(t *testing.T) {
	s := newPipeStack(t)
	data := payloadOf(2992)
	s.send(t, s.fragmentedPing(9, data)...)
	out := s.collect(t)
	require.Len(t, out, 1, "an ARP request; the reply's fragments wait for it")
	assert.EqualValues(t, 3, s.ARP().Stats().Queued)
	s.send(t, s.arpReply())
	out = s.collect(t)
	require.Len(t, out, 3, "the whole reply, in three fragments")

	peer, err := ip.New(ip.Config{Addr: netip.PrefixFrom(peerAddr, 24)})
	require.NoError(t, err)
	wantLen := []int{1500, 1500, 60}
	var reply ip.Datagram
	ok := false
	for i, f := range out {
		e := wire.Ethernet(f)
		assert.Equal(t, s.peer.MAC(), e.Dst())
		h := wire.IPv4(e.Payload())
		require.NoError(t, h.Check())
		assert.Equal(t, wantLen[i], h.TotalLen(), "fragment %d", i)
		assert.Equal(t, i*1480, h.FragmentOffset(), "fragment %d", i)
		assert.Equal(t, i < 2, h.MoreFragments(), "fragment %d", i)
		assert.False(t, h.DontFragment())
		reply, ok = peer.Input(0, h)
	}
	require.True(t, ok, "the peer reassembles the reply")
	m := wire.ICMP(reply.Payload)
	require.True(t, m.ChecksumValid())
	assert.EqualValues(t, wire.ICMPEchoReply, m.Type())
	assert.EqualValues(t, 0x4242, m.ID())
	assert.EqualValues(t, 9, m.Seq())
	assert.Equal(t, data, []byte(m.Payload()), "not truncated")
}

// TestFragmentsWaitingForARPStayBounded: a 65,507-byte datagram (45
// fragments) to a neighbour not yet resolved fills its queue no further
// than the neighbour cache's bounds: the oldest fragments make room.
func TestFragmentsWaitingForARPStayBounded(t *testing.T) {
	s := newPipeStack(t)
	ep, err := s.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 4000))
	require.NoError(t, err)
	_, err = ep.WriteTo(make([]byte, 65507), netip.AddrPortFrom(peerAddr, 9))
	require.NoError(t, err)
	s.poll(t)
	st := s.ARP().Stats()
	assert.EqualValues(t, 45, st.Queued, "every fragment offered to the queue")
	assert.EqualValues(t, 45-8, st.QueueDrops, "eight wait (MaxQueue)")
	assert.LessOrEqual(t, st.QueuedBytes, 8*1500)
	assert.EqualValues(t, 45, s.IP().Stats().IP.FragCreates)
	s.poll(t)
	out := s.collect(t)
	require.Len(t, out, 1, "the ARP request")
	assert.EqualValues(t, wire.EtherTypeARP, wire.Ethernet(out[0]).Type())
	s.send(t, s.arpReply())
	out = s.collect(t)
	require.Len(t, out, 8, "what waited leaves once the peer answers")
	last := wire.IPv4(wire.Ethernet(out[7]).Payload())
	assert.False(t, last.MoreFragments(), "the newest waited: the datagram's tail")
}

// TestFragmentationDoesNotAllocate: a 3,000-byte ping answered in
// fragments and an 8 KB UDP datagram sent in fragments cost no allocation
// once the stack is warm.
func TestFragmentationDoesNotAllocate(t *testing.T) {
	s := newPipeStack(t)
	require.NoError(t, s.ARP().AddStatic(s.now, peerAddr, s.peer.MAC()))
	ep, err := s.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 4000))
	require.NoError(t, err)
	ping := s.fragmentedPing(1, make([]byte, 2992))
	big := make([]byte, 8192)
	in := make([]nic.Frame, len(ping))
	out := make([]nic.Frame, 16)
	round := func() {
		n := s.peer.Alloc(in)
		for i := range n {
			in[i].Data = in[i].Data[:copy(in[i].Data, ping[i])]
		}
		s.peer.Transmit(in[:n])
		ep.WriteTo(big, netip.AddrPortFrom(peerAddr, 9))
		s.now++
		s.Poll(s.now)
		m, _ := s.peer.Receive(out)
		s.peer.Release(out[:m])
	}
	round()
	assert.Zero(t, testing.AllocsPerRun(500, round))
	st := s.IP().Stats()
	assert.EqualValues(t, 502, st.ICMP.OutEchoReps, "every ping was answered")
	assert.EqualValues(t, 502*(3+6), st.IP.FragCreates, "3 fragments a reply, 6 a datagram")
	assert.EqualValues(t, 502*(3+6), s.Stats().TxFrames-1, "all sent (and one ARP announcement)")
}

// TestUDPDontFragment: with UDP.DontFragment (IP_PMTUDISC_DO for every
// socket) a datagram over the MTU is refused and one that fits carries DF.
func TestUDPDontFragment(t *testing.T) {
	a, b := nic.NewPipe(nic.PipeConfig{})
	p, err := fastpath.New(fastpath.Config{Link: a, IP: ip.Config{Addr: netip.PrefixFrom(stackAddr, 24)}, UDP: udp.Config{DontFragment: true}})
	require.NoError(t, err)
	require.NoError(t, p.ARP().AddStatic(0, peerAddr, b.MAC()))
	ep, err := p.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 4000))
	require.NoError(t, err)
	_, err = ep.WriteTo(make([]byte, 1473), netip.AddrPortFrom(peerAddr, 9))
	assert.ErrorIs(t, err, syscall.EMSGSIZE)
	_, err = ep.WriteTo(make([]byte, 1472), netip.AddrPortFrom(peerAddr, 9))
	require.NoError(t, err)
	_, err = p.Poll(time.Millisecond)
	require.NoError(t, err)
	fs := make([]nic.Frame, 4)
	n, err := b.Receive(fs)
	require.NoError(t, err)
	var udps []wire.IPv4
	for _, f := range fs[:n] {
		if e := wire.Ethernet(f.Data); e.Type() == wire.EtherTypeIPv4 {
			udps = append(udps, wire.IPv4(e.Payload()))
		}
	}
	require.Len(t, udps, 1)
	assert.True(t, udps[0].DontFragment())
	assert.Equal(t, 1500, udps[0].TotalLen())
	b.Release(fs[:n])
}

// BenchmarkPollFragmentedPing: a 3,000-byte ping in three fragments in,
// reassembled, answered in place and cut into three fragments out.
func BenchmarkPollFragmentedPing(b *testing.B) {
	s := newPipeStack(b)
	require.NoError(b, s.ARP().AddStatic(s.now, peerAddr, s.peer.MAC()))
	ping := s.fragmentedPing(1, make([]byte, 2992))
	in := make([]nic.Frame, len(ping))
	out := make([]nic.Frame, 8)
	b.SetBytes(int64(2 * 3028))
	b.ReportAllocs()
	for b.Loop() {
		n := s.peer.Alloc(in)
		for i := range n {
			in[i].Data = in[i].Data[:copy(in[i].Data, ping[i])]
		}
		s.peer.Transmit(in[:n])
		s.now++
		s.Poll(s.now)
		m, _ := s.peer.Receive(out)
		s.peer.Release(out[:m])
	}
	require.EqualValues(b, 3*s.IP().Stats().ICMP.OutEchoReps, s.IP().Stats().IP.FragCreates)
}
