package tcp

import (
	"slices"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Selective acknowledgment (RFC 2018, D-SACK of RFC 2883). Unless
// Config.NoSACK, offered in our SYN and answered in our SYN,ACK when
// the peer's SYN offered it (a cookie's too: its TSval keeps the bit), and
// used only when both SYNs carried it (RFC 2018 2).
//
//   - As the receiver, every ACK carries blocks for the out-of-order data
//     the receive buffer holds (section 4): the range of the segment that
//     came last first, then the ranges of the ones before it, then the
//     others; as many as fit beside timestamps (3, or 4 without). A
//     duplicate segment puts a D-SACK block first (RFC 2883 4).
//   - As the sender, the peer's blocks go into a scoreboard of at most
//     maxOutOfOrder ranges above SND.UNA, and mark the records of the
//     segments they cover (rack.go), which drive recovery: RACK (RFC 8985)
//     marks losses, retransmissions stop where SACKed data begins (RFC
//     6675's NextSeg), pipe counts what is in flight, PRR (RFC 6937)
//     sizes the sending (recovery.go), and after a timeout what the peer
//     SACKed is not resent (RFC 6675 5.1). SACKed data stays in the send
//     buffer until the cumulative ACK covers it (RFC 2018 8): the
//     receiver may renege, and an ACK that stops at or inside a SACKed
//     range shows it did, which empties the scoreboard and the records'
//     marks (Linux's tcp_check_sack_reneging).
//
// Before congestion control, skipping SACKed data after a timeout took
// the two-flow simulation from 70 to 14–21 Mbit/s (a lost retransmission
// of a hole had few segments after it to draw the duplicate ACKs of a
// fast retransmit); with RACK's time-based marking, which needs no
// duplicate ACKs, and cwnd bounding the resending, it no longer does.

// sackRoom is how many SACK blocks fit in a segment's options beside the
// timestamps, if in use (RFC 2018 3).
func (c *Conn) sackRoom() int {
	if c.ts {
		return 3
	}
	return wire.MaxSACKBlocks
}

// sackBlocks is how many SACK blocks our next ACK carries.
func (c *Conn) sackBlocks() int {
	if !c.sack || c.finReceived {
		return 0
	}
	n := c.rcv.ooo.n
	if c.dsackDue {
		n++
	}
	return min(n, c.sackRoom())
}

// sackOptLen is the room the SACK blocks of our next ACK take: two NOPs,
// kind and length, and 8 bytes a block.
func (c *Conn) sackOptLen() int {
	if n := c.sackBlocks(); n > 0 {
		return 4 + 8*n
	}
	return 0
}

// rcvSeq is the sequence number of receive stream offset off: the ring's
// tail is RCV.NXT's (before any FIN).
func (c *Conn) rcvSeq(off uint64) uint32 {
	return uint32(c.rcvNxt.Add(uint32(off - c.rcv.end())))
}

// addSACKBlocks fills o's SACK blocks for an ACK (RFC 2018 4): a D-SACK
// first if one is due, with the range that holds it after it (RFC 2883
// 4 (2)); then the ranges of the most recent out-of-order segments, newest
// first; then the other ranges, lowest first. A D-SACK is reported once.
func (c *Conn) addSACKBlocks(o *wire.TCPOptions) {
	room := c.sackBlocks()
	if room == 0 {
		return
	}
	ooo := &c.rcv.ooo
	var used [wire.MaxSACKBlocks]int // the ooo ranges reported
	nUsed, n := 0, 0
	put := func(i int) {
		if i < 0 || n == room || slices.Contains(used[:nUsed], i) {
			return
		}
		used[nUsed] = i
		nUsed++
		s := ooo.s[i]
		o.SACK[n] = wire.SACKBlock{Left: c.rcvSeq(s.start), Right: c.rcvSeq(s.end)}
		n++
	}
	if c.dsackDue {
		c.dsackDue = false
		c.t.stats.DSACKsSent++
		o.SACK[0] = c.dsack
		n = 1
		l := Seq(c.dsack.Left).Sub(c.rcvNxt)
		if l >= 0 {
			put(ooo.find(c.rcv.end() + uint64(l)))
		}
	}
	for _, off := range c.sackRecent[:c.nSackRecent] {
		put(ooo.find(off))
	}
	for i := 0; i < ooo.n && n < room; i++ {
		put(i)
	}
	o.NSACK = n
}

// noteOutOfOrder records that out-of-order data was stored at receive
// stream offset off: its range is the first block of the next ACKs. The
// ranges of earlier ones follow; one that joined the in-order data or
// another range of the list is dropped from it.
func (c *Conn) noteOutOfOrder(off uint64) {
	ooo := &c.rcv.ooo
	at := ooo.find(off)
	if at < 0 {
		return // nothing was stored: the buffer was full
	}
	keep := c.sackRecent
	n := 0
	c.sackRecent[n] = off
	n++
	for _, o := range keep[:c.nSackRecent] {
		if i := ooo.find(o); i >= 0 && i != at && n < len(c.sackRecent) {
			c.sackRecent[n] = o
			n++
		}
	}
	c.nSackRecent = n
}

// noteDuplicate records that the segment's bytes [from, to) had all been
// received already: the next ACK reports them in a D-SACK block (RFC
// 2883 4), a later duplicate replacing an earlier one not yet reported.
func (c *Conn) noteDuplicate(from, to Seq) {
	if c.sack && from.LessThan(to) {
		c.dsack, c.dsackDue = wire.SACKBlock{Left: uint32(from), Right: uint32(to)}, true
	}
}

// noteOldData reports the part before RCV.NXT of a data segment dropped
// as unacceptable or by PAWS in a D-SACK: the peer's copy was not needed
// (RFC 2883 4; Linux's tcp_send_dupack).
func (c *Conn) noteOldData(seg *segment) {
	if n := uint32(len(seg.payload)); n > 0 && seg.seq.LessThan(c.rcvNxt) {
		c.noteDuplicate(seg.seq, min(seg.seq.Add(n), c.rcvNxt))
	}
}

// sndOff is the send stream offset of seq, at or after SND.UNA: the send
// ring's head is SND.UNA's once our SYN is acknowledged.
func (c *Conn) sndOff(seq Seq) uint64 { return c.snd.head.Load() + uint64(uint32(seq.Sub(c.sndUna))) }

// sndSeq is the sequence number of send stream offset off.
func (c *Conn) sndSeq(off uint64) Seq { return c.sndUna.Add(uint32(off - c.snd.head.Load())) }

// takeSACK updates the scoreboard with seg's ACK (RFC 2018 5, RFC 6675
// 5's update): ranges the cumulative ACK covers go, and its valid blocks
// are merged in. A first block below the ACK, or inside the second block,
// is a D-SACK (RFC 2883 5): counted, not stored. A block that is not
// within SND.UNA–SND.MAX is discarded (Linux's tcp_is_sackblock_valid, in
// short); one that the full scoreboard cannot take is counted and lost.
func (c *Conn) takeSACK(seg *segment) {
	t := c.t
	sb := &c.scoreboard
	if c.sndUna == c.sndMax {
		sb.n = 0 // all acknowledged (and the send buffer may be gone)
	}
	una := c.snd.head.Load()
	i := 0
	for i < sb.n && sb.s[i].end <= una {
		i++
	}
	sb.drop(i)
	if sb.n > 0 && sb.s[0].start <= una {
		// The ACK stops at or inside data the peer said it held: it
		// reneged (RFC 2018 8). Forget all it said.
		t.stats.SACKReneging++
		sb.n = 0
		c.unSACKRecords()
	}
	if !c.sack || seg.opts.NSACK == 0 {
		return
	}
	blocks := seg.opts.SACK[:seg.opts.NSACK]
	t.stats.SACKBlocksRecv += uint64(len(blocks))
	c.stats.SACKBlocksRecv += uint64(len(blocks))
	_, dsack := dsackBlock(seg)
	for k, b := range blocks {
		l, r := Seq(b.Left), Seq(b.Right)
		if k == 0 && dsack {
			t.stats.DSACKsRecv++
			c.stats.DSACKsRecv++
			c.rack.dsack = true
			c.dsackReceived()
			continue
		}
		if !l.LessThan(r) || !c.sndUna.LessThan(l) || c.sndMax.LessThan(r) {
			t.stats.SACKDiscards++
			continue
		}
		from, to := c.sndOff(l), c.sndOff(r)
		c.sackRecords(from, to, seg)
		if !sb.add(span{from, to}) {
			t.stats.SACKScoreboardOverflows++
		}
	}
}

// dsackBlock is seg's first SACK block if it is a D-SACK (RFC 2883 5):
// below the ACK, or inside the second block.
func dsackBlock(seg *segment) (wire.SACKBlock, bool) {
	o := &seg.opts
	if o.NSACK == 0 {
		return wire.SACKBlock{}, false
	}
	b := o.SACK[0]
	l, r := Seq(b.Left), Seq(b.Right)
	if l.LessThan(seg.ack) || (o.NSACK > 1 && Seq(o.SACK[1].Left).LessEq(l) && r.LessEq(Seq(o.SACK[1].Right))) {
		return b, true
	}
	return wire.SACKBlock{}, false
}

// sackHole is how many bytes from seq, which no SACKed range holds, come
// before the next range the scoreboard holds: where a retransmission from
// seq stops (RFC 6675 NextSeg rule 1); -1 if no range follows.
func (c *Conn) sackHole(seq Seq) int {
	off := c.sndOff(seq)
	for _, s := range c.scoreboard.spans() {
		if off < s.start {
			return int(s.start - off)
		}
	}
	return -1
}
