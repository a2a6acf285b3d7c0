package tcp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// SYN cookies (RFC 4987 3.6), laid out as Linux lays them out
// (net/ipv4/syncookies.c). While a listener's SYN queue is full, a SYN
// keeps no state: the SYN,ACK's initial sequence number is a cookie that
// the returning ACK (its acknowledgment number less one) must carry back,
// and from which the connection is rebuilt:
//
//	cookie = H(key, 4-tuple) + peer's ISN + count<<24
//	         + (H(key of count, 4-tuple) + MSS index) mod 2^24
//
// count is a counter that ticks every cookiePeriod; a cookie whose count
// is cookieMaxAge or more ticks old is refused. The first hash hides the
// counter and the peer's ISN; the second, keyed anew for every count
// (the secrets rotate with it: a key serves two periods and is never
// used again), authenticates the 24 low bits, where the index of the
// peer's MSS in cookieMSS rides. A blind attacker guesses a valid cookie
// with odds of about len(cookieMSS)·cookieMaxAge in 2^24 per ACK, and only
// while the listener sends cookies.
//
// The SYN's other options go into the low bits of our TSval, which the
// ACK echoes, when the SYN carried timestamps: the window scale (4 bits,
// 0xf for none) and SACK-permitted (bit 4; bit 5 is ECN's, which we do not
// speak). Without timestamps the SYN,ACK carries the MSS alone, and the
// connection does without window scaling and SACK (Linux does the same).

const (
	// cookiePeriod is the counter's tick: Linux's 60 s, rounded to a
	// power of two.
	cookiePeriod = 64 * time.Second
	// cookieMaxAge is how many ticks a cookie lives: it is valid for
	// 64–128 s after it was sent, Linux's MAX_SYNCOOKIE_AGE.
	cookieMaxAge = 2
	// cookieCountShift places the counter in the top 8 bits.
	cookieCountShift = 24
	cookieMask       = 1<<cookieCountShift - 1

	// The options in the low bits of a cookie SYN,ACK's TSval.
	tsOptBits   = 6
	tsOptWScale = 0xf // the window scale; 0xf: none
	tsOptSACK   = 1 << 4
)

// cookieMSS are the MSS values a cookie can carry, Linux's msstab: the
// peer's MSS is rounded down to one of them.
var cookieMSS = [...]uint16{536, 1300, 1440, 1460}

// cookieKey is the key of the cookies of one count.
type cookieKey struct {
	count  uint32
	k0, k1 uint64
	valid  bool
}

// Key tweaks derive the cookies' keys from the table's secret, apart from
// the ISNs' and the timestamp offsets'.
const (
	cookieTweak0 = 0x434f_4f4b_4945_3030 // "COOKIE00"
	cookieTweak1 = 0x434f_4f4b_4945_3131 // "COOKIE11"
)

// cookieCount is the counter now.
func (t *Table) cookieCount() uint32 { return uint32(t.now / cookiePeriod) }

// keyOf returns the key of count's cookies: a keyed hash of the count, so
// each period's key tells nothing of another's. The two counts in use are
// kept by parity, so it costs two hashes per period, not per cookie.
func (t *Table) keyOf(count uint32) (k0, k1 uint64) {
	k := &t.cookieKeys[count&1]
	if !k.valid || k.count != count {
		var m [8]byte
		binary.BigEndian.PutUint32(m[:], count)
		k.k0 = siphash.Sum64(t.isns.k0^cookieTweak1, t.isns.k1, m[:])
		m[4] = 1
		k.k1 = siphash.Sum64(t.isns.k0^cookieTweak1, t.isns.k1, m[:])
		k.count, k.valid = count, true
	}
	return k.k0, k.k1
}

// cookieHashes are the cookie's two hashes of the 4-tuple: the fixed one,
// and that of count.
func (t *Table) cookieHashes(local, remote netip.AddrPort, count uint32) (h0, h1 uint32) {
	m := tupleBytes(local, remote)
	k0, k1 := t.keyOf(count)
	return uint32(siphash.Sum64(t.isns.k0^cookieTweak0, t.isns.k1, m[:])), uint32(siphash.Sum64(k0, k1, m[:]))
}

// makeCookie is the cookie for a SYN with sequence number irs and the MSS
// index mssIdx, now.
func (t *Table) makeCookie(local, remote netip.AddrPort, irs Seq, mssIdx int) Seq {
	count := t.cookieCount()
	h0, h1 := t.cookieHashes(local, remote, count)
	return Seq(h0 + uint32(irs) + count<<cookieCountShift + (h1+uint32(mssIdx))&cookieMask)
}

// checkCookie returns the MSS that cookie, the ISN of our SYN,ACK to the
// peer's SYN with sequence number irs, carries; false if it is not one we
// made within its lifetime.
func (t *Table) checkCookie(local, remote netip.AddrPort, irs, cookie Seq) (uint16, bool) {
	now := t.cookieCount()
	h0, _ := t.cookieHashes(local, remote, now)
	v := uint32(cookie) - h0 - uint32(irs)
	age := (now - v>>cookieCountShift) & (1<<(32-cookieCountShift) - 1)
	if age >= cookieMaxAge {
		return 0, false
	}
	_, h1 := t.cookieHashes(local, remote, now-age)
	idx := (v - h1) & cookieMask
	if idx >= uint32(len(cookieMSS)) {
		return 0, false
	}
	return cookieMSS[idx], true
}

// sendCookie answers seg, a SYN that found the SYN queue full, with a
// SYN,ACK whose ISN is a cookie, and keeps nothing else (Linux's
// tcp_conn_request with want_cookie).
func (l *Listener) sendCookie(seg *segment, local, remote netip.AddrPort) {
	t := l.t
	peerMSS := seg.opts.MSS
	if peerMSS == 0 {
		peerMSS = defaultMSS
	}
	idx := len(cookieMSS) - 1
	for idx > 0 && peerMSS < cookieMSS[idx] {
		idx--
	}
	r := reply{
		local: local, remote: remote,
		seq: t.makeCookie(local, remote, seg.seq, idx), ack: seg.seq.Add(1),
		flags: wire.TCPFlagSYN | wire.TCPFlagACK,
		wnd:   uint16(t.synWindow()),
		opts:  wire.TCPOptions{MSS: uint16(min(t.mssSelf, 0xffff)), WindowScale: -1},
	}
	if !t.cfg.NoTimestamps && seg.opts.HasTimestamps {
		// RFC 7323 2.2, 3.2: window scale and timestamps only as the
		// peer offered them; the options ride in our TSval's low bits,
		// which stays at or behind the clock, so that the TSvals that
		// follow it, from the clock, never go back.
		opts := uint32(tsOptWScale)
		if seg.opts.WindowScale >= 0 {
			opts = uint32(seg.opts.WindowScale)
			r.opts.WindowScale = int8(t.windowShift())
		}
		if seg.opts.SACKPermitted {
			opts |= tsOptSACK
			// RFC 2018 2: answered, as Linux does when timestamps carry
			// the bit (without them it clears every option but the MSS).
			r.opts.SACKPermitted = !t.cfg.NoSACK
		}
		clock := uint32(t.now / tsTick)
		ts := clock>>tsOptBits<<tsOptBits | opts
		if tsBefore(clock, ts) {
			ts -= 1 << tsOptBits
		}
		r.opts.HasTimestamps, r.opts.TSVal, r.opts.TSEcr = true, t.isns.TSOffset(local, remote)+ts, seg.opts.TSVal
	}
	if !t.queueCtl(r) {
		t.stats.ListenDrops++ // too many replies wait: the SYN is lost
		return
	}
	t.stats.SyncookiesSent++
	l.cookies, l.cookieSent = true, t.now
}

// synWindow is the window of our SYN,ACK (never scaled, RFC 7323 2.2):
// the receive buffer a connection gets when it is established.
func (t *Table) synWindow() int { return min(t.rcvCap, 0xffff) }

// cookieACK takes seg, an ACK to the listener, if it carries a valid
// cookie: it rebuilds the connection the cookie's SYN asked for, and the
// ACK establishes it (Linux's cookie_v4_check). It reports whether the
// ACK was a valid cookie; one that is not draws a reset as any stray ACK
// does. Only while the listener has sent cookies lately are ACKs checked
// (Linux's tcp_synq_no_recent_overflow), so that at other times no blind
// guess can open a connection.
func (l *Listener) cookieACK(seg *segment, local, remote netip.AddrPort) bool {
	t := l.t
	if t.cfg.NoSyncookies || !l.cookies || t.now-l.cookieSent >= cookieMaxAge*cookiePeriod ||
		seg.has(wire.TCPFlagSYN) {
		return false
	}
	irs, iss := seg.seq.Add(^uint32(0)), seg.ack.Add(^uint32(0))
	mss, ok := t.checkCookie(local, remote, irs, iss)
	if !ok {
		t.stats.SyncookiesFailed++
		return false
	}
	t.stats.SyncookiesRecv++
	if l.acceptFull() {
		// As for any handshake's ACK: dropped, and the peer's next
		// segment (a retransmission of its data) carries the cookie again.
		t.stats.ListenOverflows++
		t.stats.ListenDrops++
		t.drop(DropListenOverflow, local, remote)
		return true
	}
	// The SYN as the cookie and the echo remember it.
	syn := segment{seq: irs, flags: wire.TCPFlagSYN, wnd: seg.wnd,
		opts: wire.TCPOptions{MSS: mss, WindowScale: -1}}
	if !t.cfg.NoTimestamps && seg.opts.HasTimestamps {
		opts := (seg.opts.TSEcr - t.isns.TSOffset(local, remote)) & (1<<tsOptBits - 1)
		if ws := opts & tsOptWScale; ws != tsOptWScale {
			syn.opts.WindowScale = int8(min(ws, wire.MaxWindowScale))
		}
		syn.opts.SACKPermitted = opts&tsOptSACK != 0
		syn.opts.HasTimestamps, syn.opts.TSVal = true, seg.opts.TSVal
	}
	c := l.newChild(&syn, local, remote, iss)
	// Our SYN,ACK went out, and with it the window it offered.
	c.sndNxt, c.sndMax = iss.Add(1), iss.Add(1)
	c.rcvAdv = c.rcvNxt.Add(uint32(t.synWindow()))
	c.input(seg) // in sequence and acknowledging the SYN,ACK: it establishes c
	return true
}
