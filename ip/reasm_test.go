package ip

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// frag builds one fragment of datagram id from peer: data at byte offset
// off, more fragments to come if mf.
func frag(id uint16, off int, mf bool, data []byte) []byte {
	return pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: id, ttl: 64, off: off, mf: mf, payload: data}.build()
}

// split cuts payload into UDP fragments of size bytes (a multiple of 8).
func split(id uint16, payload []byte, size int) [][]byte {
	return splitAs(id, wire.ProtoUDP, payload, size)
}

// splitAs cuts payload of protocol proto from peer to ours into fragments
// of size bytes (a multiple of 8).
func splitAs(id uint16, proto uint8, payload []byte, size int) [][]byte {
	var fs [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		fs = append(fs, pk{src: peer, dst: ours, proto: proto, id: id, ttl: 64, off: off, mf: end < len(payload), payload: payload[off:end]}.build())
	}
	return fs
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// feed gives fragments to l in order and returns the datagram the last one
// completes, failing if any other completes one.
func feed(t *testing.T, l *Layer, now time.Duration, fs ...[]byte) (Datagram, bool) {
	t.Helper()
	for i, f := range fs {
		d, ok := l.Input(now, f)
		if i < len(fs)-1 {
			require.False(t, ok, "fragment %d of %d completed a datagram", i, len(fs))
		} else {
			checkInvariants(t, l)
			return d, ok
		}
	}
	return Datagram{}, false
}

func TestReassemblyInOrder(t *testing.T) {
	l := newLayer(t)
	payload := pattern(4000, 1)
	d, ok := feed(t, l, 0, split(42, payload, 1480)...)
	require.True(t, ok)
	assert.Equal(t, payload, d.Payload)
	assert.Equal(t, peer, d.Src)
	assert.EqualValues(t, wire.ProtoUDP, d.Proto)
	h := d.Header
	require.NoError(t, h.Check())
	assert.True(t, h.ChecksumValid())
	assert.Equal(t, 20+4000, h.TotalLen())
	assert.False(t, h.IsFragment())
	assert.EqualValues(t, 42, h.ID())
	s := l.Stats().IP
	assert.EqualValues(t, 3, s.ReasmReqds)
	assert.EqualValues(t, 1, s.ReasmOKs)
	assert.EqualValues(t, 1, s.InDelivers)
	assert.Zero(t, s.ReasmFails)
	_, pending := l.Deadline()
	assert.False(t, pending, "nothing left")
}

func TestReassemblyAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := newLayer(t)
	for round := range 200 {
		payload := pattern(1+rng.IntN(9000), byte(round))
		size := max(8*(1+rng.IntN(200)), (len(payload)+8*maxFrags-1)/(8*maxFrags)*8)
		fs := split(uint16(round), payload, size)
		rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		d, ok := feed(t, l, 0, fs...)
		if len(fs) == 1 {
			continue // not a fragment at all
		}
		require.True(t, ok, "round %d", round)
		require.Equal(t, payload, d.Payload, "round %d", round)
	}
	assert.Zero(t, l.Stats().IP.ReasmFails)
}

func TestReassemblyLastFirst(t *testing.T) {
	l := newLayer(t)
	payload := pattern(3000, 3)
	fs := split(7, payload, 1000)
	d, ok := feed(t, l, 0, fs[2], fs[1], fs[0])
	require.True(t, ok)
	assert.Equal(t, payload, d.Payload)
}

func TestReassemblyDuplicatesTolerated(t *testing.T) {
	l := newLayer(t)
	payload := pattern(3000, 4)
	fs := split(8, payload, 1000)
	d, ok := feed(t, l, 0, fs[0], fs[0], fs[2], fs[0], fs[2], fs[1])
	require.True(t, ok)
	assert.Equal(t, payload, d.Payload)
	assert.Zero(t, l.Stats().IP.ReasmFails)
	// A duplicate after completion starts a new datagram, which times out.
	_, ok = l.Input(0, fs[1])
	assert.False(t, ok)
}

func TestReassemblyOverlapDropsDatagram(t *testing.T) {
	cases := map[string][][]byte{
		// The rewrite of RFC 1858 section 4: a second fragment at offset 8
		// overwrites the transport header's second word.
		"rewrite": {frag(1, 0, true, pattern(24, 0)), frag(1, 8, true, pattern(16, 9)), frag(1, 24, false, pattern(8, 0))},
		// Overlapping the previous fragment's tail.
		"tail": {frag(1, 0, true, pattern(16, 0)), frag(1, 8, false, pattern(16, 9))},
		// Same offset, different length.
		"same offset": {frag(1, 0, true, pattern(16, 0)), frag(1, 0, true, pattern(24, 9))},
		// Contained in an earlier one.
		"contained": {frag(1, 0, true, pattern(32, 0)), frag(1, 8, true, pattern(8, 9))},
		// Containing an earlier one.
		"containing": {frag(1, 8, true, pattern(8, 0)), frag(1, 0, true, pattern(32, 9))},
	}
	for name, fs := range cases {
		l := newLayer(t)
		for _, f := range fs {
			_, ok := l.Input(0, f)
			require.False(t, ok, name)
		}
		s := l.Stats().IP
		assert.EqualValues(t, 1, s.ReasmFails, name)
		assert.EqualValues(t, 1, s.ReasmOverlaps, name)
		checkInvariants(t, l)
		// The datagram is gone: the rest of the original does not complete it.
		_, ok := l.Input(0, frag(1, 24, false, pattern(8, 0)))
		assert.False(t, ok, name)
	}
}

func TestReassemblyTeardrop(t *testing.T) {
	// Teardrop: the second fragment lies inside the first and claims to
	// be last, so a naive end − offset of the overlap goes negative.
	l := newLayer(t)
	_, ok := l.Input(0, frag(9, 0, true, pattern(24, 0)))
	require.False(t, ok)
	_, ok = l.Input(0, frag(9, 16, false, pattern(4, 0)))
	require.False(t, ok)
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
	checkInvariants(t, l)
	_, pending := l.Deadline()
	assert.False(t, pending, "the datagram was dropped at once")
}

func TestReassemblyInconsistentLast(t *testing.T) {
	l := newLayer(t)
	feed(t, l, 0, frag(3, 16, false, pattern(8, 0)), frag(3, 32, false, pattern(8, 0)))
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails, "two different last fragments")

	l = newLayer(t)
	feed(t, l, 0, frag(3, 16, false, pattern(8, 0)), frag(3, 24, true, pattern(8, 0)))
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails, "data past the last fragment")

	l = newLayer(t)
	feed(t, l, 0, frag(3, 24, true, pattern(8, 0)), frag(3, 8, false, pattern(8, 0)))
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails, "a last fragment before data already held")
}

func TestReassemblyMalformedFragments(t *testing.T) {
	cases := map[string][]byte{
		"empty":                frag(4, 8, true, nil),
		"empty last":           frag(4, 8, false, nil),
		"non-last not 8-byte":  frag(4, 0, true, pattern(12, 0)),
		"beyond 65535 (death)": frag(4, 65528, false, pattern(8, 0)),
	}
	for name, f := range cases {
		l := newLayer(t)
		_, ok := l.Input(0, frag(4, 16, true, pattern(8, 0))) // a datagram in progress
		require.False(t, ok)
		_, ok = l.Input(0, f)
		assert.False(t, ok, name)
		assert.EqualValues(t, 1, l.Stats().IP.ReasmFails, name)
		_, pending := l.Deadline()
		assert.False(t, pending, "%s: the malformed fragment spoiled its datagram", name)
		checkInvariants(t, l)
	}
}

func TestReassemblyMaxSize(t *testing.T) {
	l := newLayer(t)
	// The largest datagram: 65,515 bytes of payload behind a 20-byte header.
	payload := pattern(maxPacket-20, 5)
	d, ok := feed(t, l, 0, split(11, payload, 8*185)...)
	require.True(t, ok)
	assert.Equal(t, payload, d.Payload)
	assert.Equal(t, maxPacket, d.Header.TotalLen())
	// One byte more is refused.
	fs := split(12, pattern(maxPacket-19, 5), 8*185)
	_, ok = feed(t, l, 0, fs...)
	assert.False(t, ok)
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
}

func TestReassemblyTinyFragments(t *testing.T) {
	l := newLayer(t)
	// Eight-byte fragments, as in RFC 1858's tiny fragment attack, are
	// legal and reassemble, up to maxFrags of them.
	payload := pattern(8*maxFrags, 6)
	d, ok := feed(t, l, 0, split(13, payload, 8)...)
	require.True(t, ok)
	assert.Equal(t, payload, d.Payload)
	// One fragment more than maxFrags spoils the datagram.
	_, ok = feed(t, l, 0, split(14, pattern(8*maxFrags+8, 6), 8)...)
	assert.False(t, ok)
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
}

func TestReassemblyRebuildsHeaderWithoutOptions(t *testing.T) {
	l := newLayer(t)
	opts := []byte{1, 1, 1, 0} // NOP, NOP, NOP, end
	f0 := pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: 5, tos: 0x28, ttl: 3, df: false, mf: true, opts: opts, payload: pattern(16, 0)}.build()
	f1 := pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: 5, ttl: 3, off: 16, payload: pattern(5, 1)}.build()
	d, ok := feed(t, l, 0, f1, f0)
	require.True(t, ok)
	assert.Equal(t, 20, d.Header.HeaderLen())
	assert.EqualValues(t, 0x28, d.Header.TOS())
	assert.EqualValues(t, 3, d.Header.TTL())
	assert.Equal(t, append(pattern(16, 0), pattern(5, 1)...), d.Payload)
}

func TestReassemblyKeyedBySourceAndProtocol(t *testing.T) {
	l := newLayer(t)
	other := netip.MustParseAddr("198.18.0.3")
	a := pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: 1, mf: true, payload: pattern(8, 1)}.build()
	b := pk{src: other, dst: ours, proto: wire.ProtoUDP, id: 1, off: 8, payload: pattern(8, 2)}.build()
	c := pk{src: peer, dst: ours, proto: wire.ProtoTCP, id: 1, off: 8, payload: pattern(8, 3)}.build()
	for _, f := range [][]byte{a, b, c} {
		_, ok := l.Input(0, f)
		assert.False(t, ok)
	}
	assert.Zero(t, l.Stats().IP.ReasmFails, "three datagrams, no overlap")
	d, ok := l.Input(0, pk{src: peer, dst: ours, proto: wire.ProtoUDP, id: 1, off: 8, payload: pattern(8, 4)}.build())
	require.True(t, ok)
	assert.Equal(t, append(pattern(8, 1), pattern(8, 4)...), d.Payload)
}

func TestReassemblyToBroadcast(t *testing.T) {
	l := newLayer(t)
	f0 := pk{src: peer, dst: subBc, proto: wire.ProtoUDP, id: 2, mf: true, payload: pattern(8, 0)}.build()
	f1 := pk{src: peer, dst: subBc, proto: wire.ProtoUDP, id: 2, off: 8, payload: pattern(8, 0)}.build()
	d, ok := feed(t, l, 0, f0, f1)
	require.True(t, ok)
	assert.True(t, d.Broadcast)
}

func TestReassemblyTimeout(t *testing.T) {
	l := newLayer(t)
	fs := split(21, pattern(3000, 0), 1000)
	_, ok := l.Input(5*time.Second, fs[0]) // fragment zero
	require.False(t, ok)
	_, ok = l.Input(6*time.Second, split(22, pattern(3000, 0), 1000)[2]) // no fragment zero
	require.False(t, ok)
	dl, pending := l.Deadline()
	require.True(t, pending)
	assert.Equal(t, 35*time.Second, dl, "30 s after the first fragment")

	out := make([]byte, 1514)
	assert.Zero(t, tick(l, dl-1, out), "not yet")
	n := tick(l, dl, out)
	require.Equal(t, 28+20+min(1000, 548-20), n, "time exceeded quotes fragment zero up to 576 bytes")
	ip := wire.IPv4(out[:n])
	require.NoError(t, ip.Check())
	assert.True(t, ip.ChecksumValid())
	assert.Equal(t, peer, ip.Dst())
	assert.Equal(t, ours, ip.Src())
	m := wire.ICMP(ip.Payload())
	assert.True(t, m.ChecksumValid())
	assert.EqualValues(t, wire.ICMPTimeExceeded, m.Type())
	assert.EqualValues(t, 1, m.Code(), "fragment reassembly time exceeded")
	assert.Equal(t, fs[0][:n-28], []byte(m.Payload()), "quotes fragment zero as received")

	dl, pending = l.Deadline()
	require.True(t, pending)
	assert.Equal(t, 36*time.Second, dl)
	assert.Zero(t, tick(l, dl, out), "RFC 1122 3.3.2: no error without fragment zero")
	_, pending = l.Deadline()
	assert.False(t, pending)

	s := l.Stats()
	assert.EqualValues(t, 2, s.IP.ReasmTimeout)
	assert.EqualValues(t, 2, s.IP.ReasmFails)
	assert.EqualValues(t, 1, s.ICMP.OutTimeExcds)
	checkInvariants(t, l)

	// The rest of a timed-out datagram starts over and does not complete.
	_, ok = l.Input(40*time.Second, fs[1])
	assert.False(t, ok)
}

func TestReassemblyTickExpiresAllDue(t *testing.T) {
	l := newLayer(t)
	for i := range 5 {
		_, ok := l.Input(time.Duration(i)*time.Second, frag(uint16(i), 0, true, pattern(8, 0)))
		require.False(t, ok)
	}
	out := make([]byte, 1514)
	sent := 0
	for tick(l, time.Minute, out) > 0 {
		sent++
	}
	assert.Equal(t, 5, sent)
	_, pending := l.Deadline()
	assert.False(t, pending)
}

func TestReassemblyEvictsOldestWhenSlotsRunOut(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ReasmDatagrams = 2 })
	_, _ = l.Input(0, frag(1, 0, true, pattern(8, 1)))
	_, _ = l.Input(1, frag(2, 0, true, pattern(8, 2)))
	_, _ = l.Input(2, frag(3, 0, true, pattern(8, 3))) // evicts 1
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
	_, ok := l.Input(3, frag(1, 8, false, pattern(8, 1)))
	assert.False(t, ok, "datagram 1 was evicted")
	d, ok := l.Input(4, frag(3, 8, false, pattern(8, 3))) // 2 was evicted by 1's restart
	require.True(t, ok)
	assert.Equal(t, append(pattern(8, 3), pattern(8, 3)...), d.Payload)
	checkInvariants(t, l)
}

func TestReassemblyMemoryCapUnderFlood(t *testing.T) {
	const memory = minReasmMemory
	l := newLayer(t, func(c *Config) { c.ReasmMemory = memory; c.ReasmDatagrams = 16 })
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 1480)
	arena := &l.reasm.arena[0]
	for i := range 100_000 {
		size := 8 * (1 + rng.IntN(185))
		last := rng.IntN(4) == 0
		if last {
			size = 1 + rng.IntN(1480)
		}
		f := pk{
			src: netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + rng.IntN(4))}), dst: ours, proto: wire.ProtoUDP,
			id: uint16(rng.IntN(64)), off: 8 * rng.IntN(8000), mf: !last, payload: buf[:size],
		}.build()
		l.Input(time.Duration(i)*time.Millisecond, f)
		require.GreaterOrEqual(t, l.reasm.nfree, 0)
		require.LessOrEqual(t, (len(l.reasm.blockNext)-l.reasm.nfree)*blockSize, memory)
		if i%997 == 0 {
			checkInvariants(t, l)
		}
	}
	checkInvariants(t, l)
	assert.Same(t, arena, &l.reasm.arena[0], "the arena is never reallocated")
	s := l.Stats().IP
	assert.EqualValues(t, 100_000, s.ReasmReqds+s.InDelivers, "every packet a fragment, or whole by chance")
	t.Logf("flood: %+v", s)
}

func TestReassemblyFloodAllocatesNothing(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ReasmMemory = minReasmMemory; c.ReasmDatagrams = 4 })
	fs := make([][]byte, 64)
	for i := range fs {
		fs[i] = frag(uint16(i%9), 8*(i%13)*3, i%5 != 0, pattern(8*(1+i%70), 0))
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		l.Input(time.Duration(i), fs[i%len(fs)])
		i++
	})
	assert.Zero(t, allocs)
}

func TestReassemblyEvictsOldestWhenMemoryRunsOut(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ReasmMemory = minReasmMemory }) // 256 blocks
	a := split(1, pattern(44*1480, 1), 1480)                             // 3 blocks a fragment
	b := split(2, pattern(44*1480, 2), 1480)
	for _, f := range a[:len(a)-1] {
		_, ok := l.Input(0, f)
		require.False(t, ok)
	}
	assert.Equal(t, 256-43*3, l.reasm.nfree)
	// b needs more than what is left: a, the oldest, goes.
	d, ok := feed(t, l, time.Second, b...)
	require.True(t, ok)
	assert.Equal(t, pattern(44*1480, 2), d.Payload)
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
	_, ok = l.Input(2*time.Second, a[len(a)-1])
	assert.False(t, ok, "a was evicted")
	checkInvariants(t, l)
}

func TestReassemblyEvictsOthersNotItself(t *testing.T) {
	l := newLayer(t, func(c *Config) { c.ReasmMemory = minReasmMemory })
	a := split(1, pattern(44*1480, 1), 1480)
	b := split(2, pattern(44*1480, 2), 1480)
	_, ok := l.Input(0, a[0]) // a is the oldest
	require.False(t, ok)
	for _, f := range b[:len(b)-1] {
		_, ok := l.Input(1, f)
		require.False(t, ok)
	}
	// a's fragments need b's memory: b goes, though a is older.
	d, ok := feed(t, l, 2, a[1:]...)
	require.True(t, ok)
	assert.Equal(t, pattern(44*1480, 1), d.Payload)
	assert.EqualValues(t, 1, l.Stats().IP.ReasmFails)
}
