package tcp_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// sackConn opens a connection with a peer that offers mss, SACK-permitted if
// sack and timestamps if withTS: passive (the table listens, the peer's
// ACK comes 10 ms after its SYN) or active (the peer's SYN,ACK comes 100
// ms after ours). It checks the SYN or SYN,ACK the table sends: SACK-
// permitted in our SYN unless Config.NoSACK; in our SYN,ACK only if the
// peer offered it too (RFC 2018 2). Its segments carry TSval peerTS+10
// from then on, which the table echoes.
func sackConn(t testing.TB, s *stack, mss uint16, active, sack, withTS bool) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	used := withTS && !s.cfg.NoTimestamps
	var peerTSOpt *tsOpt
	if withTS {
		peerTSOpt = ts(peerTS, 0)
	}
	var p *peer
	var c *tcp.Conn
	var iss uint32
	if active {
		p, c, iss = dialSYN(t, s) // our SYN offers SACK unless Config.NoSACK
		synTS := p.tsval()
		s.advance(100 * ms)
		if withTS {
			peerTSOpt = ts(peerTS, synTS)
		}
		p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: mss, ws: wscale(peerShift), ts: peerTSOpt, sackOK: sack})
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: uint16(s.rcvCap() >> s.shift()), ts: p.ourTSIf(used, peerTS)})
	} else {
		var l *tcp.Listener
		l, p = listen(t, s, 16)
		iss = p.isn()
		p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: mss, ws: wscale(peerShift), ts: peerTSOpt, sackOK: sack})
		synack := p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: s.synWin(), mss: 1460, ws: wscale(s.shift()),
			ts: p.ourTSIf(used, peerTS), sackOK: sack && !s.cfg.NoSACK})
		s.advance(10 * ms)
		ack := seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512}
		if used {
			ack.ts = ts(peerTS+10, synack.ts.val)
		}
		p.send(t, ack)
		s.expectNothing(t)
		var err error
		c, err = l.Accept()
		require.NoError(t, err)
	}
	require.Equal(t, tcp.Established, c.State())
	assert.Equal(t, sack, c.PeerSACKPermitted())
	assert.Equal(t, sack && !s.cfg.NoSACK, c.SACK(), "SACK in use")
	return p, c, iss
}

// ourTSIf is the table's timestamps option now, echoing ecr, if used.
func (p *peer) ourTSIf(used bool, ecr uint32) *tsOpt {
	if !used {
		return nil
	}
	return ts(p.tsval(), ecr)
}

// SACK-permitted is negotiated both ways, with and without timestamps:
// offered in every SYN of ours unless Config.NoSACK, answered in a
// SYN,ACK only to a peer that offered it, and in use only when both did.
func TestSACKNegotiation(t *testing.T) {
	for _, active := range []bool{false, true} {
		for _, sack := range []bool{false, true} {
			for _, withTS := range []bool{false, true} {
				for _, on := range []bool{false, true} {
					name := fmt.Sprintf("active%v/peerSACK%v/ts%v/SACK%v", active, sack, withTS, on)
					t.Run(name, func(t *testing.T) {
						s := newStack(t, tcp.Config{NoSACK: !on})
						sackConn(t, s, 1460, active, sack, withTS)
					})
				}
			}
		}
	}
}

// sackData sends the peer's data segment of n bytes at stream offset off
// (from peerISN+1), acknowledging our ISS+1 and carrying TSval peerTS+10
// if timestamps are in use.
func sackData(t testing.TB, p *peer, iss uint32, off, n int, withTS bool) {
	t.Helper()
	sg := seg{flags: ".", seq: peerISN + 1 + uint32(off), ack: iss + 1, win: 512, payload: data(off, n)}
	if withTS {
		sg.ts = ts(peerTS+10, p.tsval())
	}
	p.send(t, sg)
}

// blk is the SACK block of stream offsets [from, to) of the peer's data.
func blk(from, to int) wire.SACKBlock {
	return wire.SACKBlock{Left: peerISN + 1 + uint32(from), Right: peerISN + 1 + uint32(to)}
}

// Out-of-order segments draw duplicate ACKs whose SACK blocks describe
// what the buffer holds (RFC 2018 4): the range of the latest segment
// first, then those of the ones before it, then the others; 3 beside
// timestamps, 4 without. A segment that extends a range makes it first
// again; one that fills the hole drops what joined the in-order data.
// Data we send meanwhile carries the blocks too, its payload cut by them.
func TestSACKBlocksOutOfOrder(t *testing.T) {
	for _, withTS := range []bool{false, true} {
		t.Run(fmt.Sprintf("ts%v", withTS), func(t *testing.T) {
			s := newStack(t, tcp.Config{})
			p, c, iss := sackConn(t, s, 1460, false, true, withTS)
			room := 4
			var echo *tsOpt
			if withTS {
				room, echo = 3, ts(p.tsval(), peerTS+10)
			}
			dupACK := func(blocks ...wire.SACKBlock) {
				t.Helper()
				p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, ts: echo, sack: blocks[:min(len(blocks), room)]})
				s.expectNothing(t)
			}
			a, b, cc, d, e := blk(1000, 1100), blk(2000, 2100), blk(3000, 3100), blk(4000, 4100), blk(5000, 5100)
			sackData(t, p, iss, 1000, 100, withTS)
			dupACK(a)
			sackData(t, p, iss, 3000, 100, withTS)
			dupACK(cc, a)
			sackData(t, p, iss, 2000, 100, withTS)
			dupACK(b, cc, a)
			sackData(t, p, iss, 5000, 100, withTS)
			dupACK(e, b, cc, a)
			sackData(t, p, iss, 4000, 100, withTS)
			dupACK(d, e, b, cc, a)
			// B grows: first again, the others in their order.
			sackData(t, p, iss, 2100, 50, withTS)
			dupACK(blk(2000, 2150), d, e, cc, a)

			// Data we send now carries the blocks: its payload shrinks by
			// them (the peer's MSS 1460 counts no options).
			_, err := c.Write(data(0, 3000))
			require.NoError(t, err)
			optLen := 4 + 8*room
			if withTS {
				optLen += 12
			}
			first := 1460 - optLen
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, ts: echo,
				sack: []wire.SACKBlock{blk(2000, 2150), d, e, cc}[:room], payload: data(0, first)})

			// The first hole fills: A joins the in-order data and leaves
			// the blocks.
			sackData(t, p, iss, 0, 1000, withTS)
			got, _, _, ok := p.next(t)
			require.True(t, ok)
			assert.Equal(t, peerISN+1+uint32(1100), got.ack)
			assert.Equal(t, []wire.SACKBlock{blk(2000, 2150), d, e, cc}[:room], got.sack)
			assert.Zero(t, s.tb.Stats().DSACKsSent)
		})
	}
}

// A duplicate segment draws a D-SACK block first (RFC 2883 4), reported
// once: for data below RCV.NXT (whole or in part, acceptable or not, or
// dropped by PAWS), and for data the out-of-order queue holds, with the
// range that holds it second.
func TestDSACKSent(t *testing.T) {
	for _, withTS := range []bool{false, true} {
		t.Run(fmt.Sprintf("ts%v", withTS), func(t *testing.T) {
			s := newStack(t, tcp.Config{})
			p, c, iss := sackConn(t, s, 1460, false, true, withTS)
			var echo *tsOpt
			if withTS {
				echo = ts(p.tsval(), peerTS+10)
			}
			// The window: the app reads nothing until the end, so it is
			// the buffer less what came in order.
			ack := func(n int, blocks ...wire.SACKBlock) {
				t.Helper()
				p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1 + uint32(n), win: uint16((131072 - n) >> ourShift), ts: echo, sack: blocks})
				s.expectNothing(t)
			}
			sackData(t, p, iss, 0, 1000, withTS)
			ack(1000)
			// The whole segment again: it ends at RCV.NXT.
			sackData(t, p, iss, 0, 1000, withTS)
			ack(1000, blk(0, 1000))
			// A segment half old, half new.
			sackData(t, p, iss, 500, 1000, withTS)
			ack(1500, blk(500, 1000))
			// An old one wholly left of RCV.NXT (unacceptable): answered
			// at once, data not being rate limited.
			sackData(t, p, iss, 100, 200, withTS)
			ack(1500, blk(100, 300))
			// A duplicate of out-of-order data: the D-SACK, then the
			// range that holds it.
			sackData(t, p, iss, 3000, 500, withTS)
			ack(1500, blk(3000, 3500))
			sackData(t, p, iss, 3100, 100, withTS)
			ack(1500, blk(3100, 3200), blk(3000, 3500))
			// Reported once: the next ACK has the range alone.
			sackData(t, p, iss, 4000, 100, withTS)
			ack(1500, blk(4000, 4100), blk(3000, 3500))
			assert.Equal(t, uint64(4), s.tb.Stats().DSACKsSent)
			if withTS {
				// Old data that PAWS drops (its TSval is older than
				// TS.Recent) is a duplicate too.
				p.send(t, seg{flags: ".", seq: peerISN + 1 + 200, ack: iss + 1, win: 512, payload: data(200, 100), ts: ts(peerTS, p.tsval())})
				ack(1500, blk(200, 300), blk(4000, 4100), blk(3000, 3500))
				assert.Equal(t, uint64(1), s.tb.Stats().PAWSDrops)
			}
			assert.Equal(t, data(0, 1500), readAll(t, c))
		})
	}
}

// Without SACK in use (the peer did not offer it, or Config.NoSACK), no
// blocks go out for out-of-order or duplicate data, and the peer's blocks
// are not taken.
func TestSACKOff(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("SACK%v", on), func(t *testing.T) {
			s := newStack(t, tcp.Config{NoSACK: !on})
			p, c, iss := sackConn(t, s, 1460, true, !on, false)
			sackData(t, p, iss, 1000, 100, false)
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
			sackData(t, p, iss, 1000, 100, false)
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
			_, err := c.Write(data(0, 2000))
			require.NoError(t, err)
			p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
			p.expect(t, seg{flags: "P.", seq: iss + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 540)})
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, sack: []wire.SACKBlock{{Left: iss + 1461, Right: iss + 2001}}})
			n := 0
			c.SACKScoreboard(func(_, _ tcp.Seq) { n++ })
			assert.Zero(t, n)
			assert.Zero(t, s.tb.Stats().SACKBlocksRecv)
		})
	}
}

// scoreboard is the connection's SACK scoreboard, as [left, right) pairs
// relative to iss.
func scoreboard(c *tcp.Conn, iss uint32) [][2]uint32 {
	var r [][2]uint32
	c.SACKScoreboard(func(l, h tcp.Seq) { r = append(r, [2]uint32{uint32(l) - iss, uint32(h) - iss}) })
	return r
}

// The peer's SACK blocks build the scoreboard (RFC 2018 5, RFC 6675 5):
// merged, valid blocks only (within SND.UNA–SND.MAX); a first block below
// the ACK, or inside the second, is a D-SACK, counted and not stored; the
// cumulative ACK trims it. An ACK that stops at the start of a SACKed
// range shows the peer reneged: the scoreboard empties, and the data
// stays in the send buffer.
func TestSACKScoreboard(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := sackConn(t, s, 1000, true, true, false)
	_, err := c.Write(data(0, 6000))
	require.NoError(t, err)
	for i := range 6 {
		p.expect(t, seg{flags: flagsFor(i == 5), seq: iss + 1 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)})
	}
	sackACK := func(ack uint32, blocks ...[2]uint32) {
		t.Helper()
		sg := seg{flags: ".", seq: peerISN + 1, ack: iss + ack, win: 512}
		for _, b := range blocks {
			sg.sack = append(sg.sack, wire.SACKBlock{Left: iss + b[0], Right: iss + b[1]})
		}
		p.send(t, sg)
	}
	// Segments 0, 2 and 4 arrived; the ACKs come a round trip later.
	s.advance(10 * ms)
	sackACK(1001, [2]uint32{2001, 3001})
	assert.Equal(t, [][2]uint32{{2001, 3001}}, scoreboard(c, iss))
	sackACK(1001, [2]uint32{4001, 5001}, [2]uint32{2001, 3001})
	assert.Equal(t, [][2]uint32{{2001, 3001}, {4001, 5001}}, scoreboard(c, iss))
	// Invalid blocks: beyond SND.MAX, empty, at SND.UNA. A D-SACK below
	// the ACK, and one inside the second block.
	sackACK(1001, [2]uint32{5001, 7001}, [2]uint32{3001, 3001}, [2]uint32{1001, 1500})
	sackACK(1001, [2]uint32{1, 1001}, [2]uint32{2001, 3001})
	sackACK(1001, [2]uint32{2101, 2201}, [2]uint32{2001, 3001})
	assert.Equal(t, [][2]uint32{{2001, 3001}, {4001, 5001}}, scoreboard(c, iss))
	st := s.tb.Stats()
	assert.Equal(t, uint64(2), st.DSACKsRecv)
	assert.Equal(t, uint64(3), st.SACKDiscards)
	assert.Equal(t, uint64(10), st.SACKBlocksRecv)
	assert.Equal(t, uint64(10), c.Stats().SACKBlocksRecv)
	// RACK (rack.go) takes segments 1 and 3, sent before the SACKed
	// segment 4, as lost once RACK.rtt (10 ms) and the reordering window
	// have passed since they went out: a quarter of the minimum RTT (two
	// SACKed segments are fewer than DupThresh), doubled by the D-SACKs
	// (RFC 8985 6.2 step 4). The reorder timer fires 5 ms after the
	// ACKs, and the first hole is resent (PRR's first retransmission).
	s.expectNothing(t)
	require.Equal(t, 5*ms, s.advanceToDeadline(t))
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	s.expectNothing(t)

	// The cumulative ACK trims the scoreboard: a range it covers goes.
	// PRR lets the other hole go.
	sackACK(3001, [2]uint32{4001, 5001})
	assert.Equal(t, [][2]uint32{{4001, 5001}}, scoreboard(c, iss))
	p.expect(t, seg{flags: ".", seq: iss + 3001, ack: peerISN + 1, win: fullWin, payload: data(3000, 1000)})
	s.expectNothing(t)
	sackACK(6001)
	assert.Empty(t, scoreboard(c, iss))
	s.expectNothing(t)

	// Reneging: the peer SACKs the last segment, then acknowledges up to
	// its start only.
	_, err = c.Write(data(0, 2000))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 6001, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 7001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	sackACK(6001, [2]uint32{7001, 8001})
	assert.Equal(t, [][2]uint32{{7001, 8001}}, scoreboard(c, iss))
	sackACK(7001)
	assert.Empty(t, scoreboard(c, iss))
	assert.Equal(t, uint64(1), s.tb.Stats().SACKReneging)
	assert.Equal(t, 1000, c.Unacked(), "SACKed data is kept until cumulatively acknowledged")
}

// Fast retransmit with SACK resends the segment at SND.UNA, cut where the
// data the peer holds begins (RFC 6675 NextSeg).
func TestSACKFastRetransmitStopsAtSACKed(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := sackConn(t, s, 1460, true, true, false)
	_, err := c.Write(data(0, 4*1460))
	require.NoError(t, err)
	for i := range 4 {
		p.expect(t, seg{flags: flagsFor(i == 3), seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
	}
	// The peer holds all but [1461, 2001): its ACKs SACK from 2001. The
	// first acknowledges 1460 bytes, three duplicates follow.
	for range 4 {
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1461, win: 512, sack: []wire.SACKBlock{{Left: iss + 2001, Right: iss + 5841}}})
	}
	p.expect(t, seg{flags: ".", seq: iss + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 540)})
	s.expectNothing(t)
}

// The scoreboard holds as many disjoint ranges as the peer reports (up
// to maxOutOfOrder, which the receive side's TestRecvBufferRangeLimit
// checks on the same set), sorted and within SND.UNA–SND.MAX; once it
// held 16 and lost the rest, which a flight with hundreds of holes
// needs.
func TestSACKScoreboardManyRanges(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := sackConn(t, s, 1000, true, true, false)
	// 30000 bytes acknowledged first grow cwnd from the initial 10
	// segments to 40 (slow start), so all 40 below go at once.
	_, err := c.Write(data(0, 30*1000))
	require.NoError(t, err)
	for _, step := range []struct{ sent, acked int }{{10, 10}, {20, 30}} {
		for range step.sent {
			_, _, _, ok := p.next(t)
			require.True(t, ok)
		}
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + uint32(1000*step.acked), win: 512})
	}
	iss += 30 * 1000
	_, err = c.Write(data(0, 40*1000))
	require.NoError(t, err)
	for range 40 {
		_, _, _, ok := p.next(t)
		require.True(t, ok)
	}
	// 20 disjoint blocks, every other 1000 bytes from 1001, 4 an ACK.
	for i := 0; i < 20; i += 4 {
		sg := seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512}
		for j := range 4 {
			l := iss + 1001 + uint32(2000*(i+j))
			sg.sack = append(sg.sack, wire.SACKBlock{Left: l, Right: l + 1000})
		}
		p.send(t, sg)
	}
	sb := scoreboard(c, iss)
	assert.Len(t, sb, 20)
	assert.Zero(t, s.tb.Stats().SACKScoreboardOverflows)
	for i, r := range sb {
		assert.Equal(t, [2]uint32{1001 + uint32(2000*i), 2001 + uint32(2000*i)}, r)
	}
	// A block that fills a gap merges two ranges.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, sack: []wire.SACKBlock{{Left: iss + 2001, Right: iss + 3001}}})
	sb = scoreboard(c, iss)
	assert.Len(t, sb, 19)
	assert.Equal(t, [2]uint32{1001, 4001}, sb[0])
}

// The SACK paths allocate nothing per segment: out-of-order data and its
// SACK-bearing ACK, the peer's SACK blocks taken into the scoreboard and
// the segment records, and recovery in steady state: RACK's loss
// detection, its reorder timer, PRR and the retransmissions it lets go.
func TestSACKNoAllocs(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := sackConn(t, s, 1000, true, true, true)
	const seg = 988 // 1000 less the timestamps
	_, err := c.Write(data(0, 8*seg))
	require.NoError(t, err)
	for range 6 {
		_, _, _, ok := p.next(t)
		require.True(t, ok)
	}
	s.advance(10 * ms)
	mk := func(f wire.TCPFields, payload []byte) []byte {
		b := make([]byte, f.HeaderLen()+len(payload))
		copy(b[f.HeaderLen():], payload)
		f.Encode(b, len(payload), p.remote.Addr(), p.local.Addr())
		return b
	}
	// Segments 2 and 4 arrived, and the peer's own data out of order.
	opts := wire.TCPOptions{WindowScale: -1, HasTimestamps: true, TSVal: peerTS + 10, TSEcr: p.tsval(), NSACK: 2,
		SACK: [wire.MaxSACKBlocks]wire.SACKBlock{{Left: iss + 1 + 2*seg, Right: iss + 1 + 3*seg}, {Left: iss + 1 + 4*seg, Right: iss + 1 + 5*seg}}}
	ofo := mk(wire.TCPFields{SrcPort: p.remote.Port(), DstPort: p.local.Port(), Seq: peerISN + 1001, Ack: iss + 1,
		Flags: wire.TCPFlagACK, Window: 512, Options: opts}, data(1000, 100))
	out := make([]byte, bufLen)
	round := func() {
		s.advance(ms)
		s.tb.Input(s.now, p.remote.Addr(), p.local.Addr(), ofo)
		for {
			if _, ok := s.tb.Output(s.now, out); !ok {
				break
			}
		}
	}
	for range 5 { // RACK marks the holes lost after 11 ms + 2.75 ms
		round()
	}
	_, _, rec := c.CongestionWindow()
	require.True(t, rec, "in recovery")
	assert.Zero(t, testing.AllocsPerRun(100, round))
	assert.Equal(t, [][2]uint32{{1 + 2*seg, 1 + 3*seg}, {1 + 4*seg, 1 + 5*seg}}, scoreboard(c, iss))
	assert.NotZero(t, s.tb.Stats().DSACKsSent, "the repeated segment drew D-SACKs")
	assert.NotZero(t, c.Stats().FastRetransmits)
}
