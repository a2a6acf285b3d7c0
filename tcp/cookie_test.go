package tcp_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// cookieListener listens on serverAddr with a SYN queue of one, and fills
// it with a half-open connection from another port, so that the next SYN
// draws a SYN cookie. It returns the listener.
func cookieListener(t *testing.T, s *stack, backlog int) *tcp.Listener {
	t.Helper()
	l, err := s.tb.Listen(serverAddr, backlog)
	require.NoError(t, err)
	filler := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 1))
	filler.send(t, seg{flags: "S", seq: 1, win: 65535, mss: 1460})
	filler.expect(t, seg{flags: "S.", seq: filler.isn(), ack: 2, win: s.synWin(), mss: 1460})
	require.Equal(t, 1, l.HalfOpen())
	return l
}

// cookieSYNACK sends the peer's SYN s to a listener whose SYN queue is
// full and checks the SYN,ACK: the peer's ISN acknowledged, our MSS, and
// window scale, timestamps and SACK-permitted only if the SYN had
// timestamps (the options ride in our TSval's low 6 bits: window scale,
// 0xf for none, and SACK-permitted in bit 4). It returns the cookie and our TSval.
func cookieSYNACK(t *testing.T, p *peer, s seg) (cookie, tsval uint32) {
	t.Helper()
	p.send(t, s)
	got, _, _, ok := p.next(t)
	require.True(t, ok, "no SYN,ACK")
	withTS := s.ts != nil && !p.cfg.NoTimestamps
	want := seg{flags: "S.", seq: got.seq, ack: s.seq + 1, win: p.synWin(), mss: 1460}
	if withTS {
		if s.ws != nil {
			want.ws = wscale(p.shift())
		}
		require.NotNil(t, got.ts, "no timestamps in %v", got)
		want.ts = ts(got.ts.val, s.ts.val)
		// SACK-permitted answered, as Linux does when the TSval keeps it.
		want.sackOK = s.sackOK && !p.cfg.NoSACK
	}
	require.Equal(t, want.String(), got.String())
	p.expectNothing(t)
	if !withTS {
		return got.seq, 0
	}
	// The encoded clock is at or behind ours, by less than 64 ms.
	off := tcp.NewISNs(p.cfg.Secret).TSOffset(p.local, p.remote)
	clock := uint32(p.now / ms)
	enc := got.ts.val - off
	assert.Less(t, clock-enc, uint32(64)) // modulo 2^32, as TSvals compare
	opts := uint32(0xf)
	if s.ws != nil {
		opts = uint32(*s.ws)
	}
	if s.sackOK {
		opts |= 1 << 4
	}
	assert.Equal(t, opts, enc&63, "options in TSval %d", got.ts.val)
	return got.seq, got.ts.val
}

// A SYN that finds the SYN queue full gets a SYN cookie; the ACK that
// returns it rebuilds the connection with the options the SYN offered, as
// far as the cookie keeps them: the MSS rounded down to Linux's table
// (536, 1300, 1440, 1460), and with timestamps the window scale and
// SACK-permitted too. The data that follows shows the MSS and scales in
// effect.
func TestSyncookieRoundTrip(t *testing.T) {
	for _, mss := range []uint16{0, 536, 1299, 1300, 1452, 1460, 8960} {
		for _, ws := range []*uint8{nil, wscale(0), wscale(7), wscale(14)} {
			for _, sack := range []bool{false, true} {
				for _, withTS := range []bool{false, true} {
					for _, noTS := range []bool{false, true} {
						name := fmt.Sprintf("mss%d/ws%v/sack%v/ts%v/noTS%v", mss, ws != nil, sack, withTS, noTS)
						if ws != nil {
							name = fmt.Sprintf("mss%d/ws%d/sack%v/ts%v/noTS%v", mss, *ws, sack, withTS, noTS)
						}
						t.Run(name, func(t *testing.T) {
							testSyncookieRoundTrip(t, mss, ws, sack, withTS, noTS)
						})
					}
				}
			}
		}
	}
}

func testSyncookieRoundTrip(t *testing.T, mss uint16, ws *uint8, sack, withTS, noTS bool) {
	s := newStack(t, tcp.Config{SynBacklog: 1, NoTimestamps: noTS})
	s.advance(10*time.Second + 37*ms) // the TSval's low bits are not zero
	l := cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	syn := seg{flags: "S", seq: peerISN, win: 65535, mss: mss, ws: ws, sackOK: sack}
	if withTS {
		syn.ts = ts(7000, 0)
	}
	cookie, tsval := cookieSYNACK(t, p, syn)
	assert.Equal(t, 1, l.HalfOpen(), "a cookie keeps no state")
	assert.Equal(t, uint64(2), s.tb.Stats().PassiveOpens+s.tb.Stats().SyncookiesSent)

	s.advance(5 * ms)
	ack := seg{flags: ".", seq: peerISN + 1, ack: cookie + 1, win: 100}
	used := withTS && !noTS // timestamps in use
	if used {
		ack.ts = ts(7001, tsval)
	}
	p.send(t, ack)
	s.expectNothing(t)
	c, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, tcp.Established, c.State())
	assert.Equal(t, p.remote, c.RemoteAddr())
	assert.Equal(t, sack && used, c.PeerSACKPermitted())
	assert.Equal(t, sack && used, c.SACK(), "SACK in use as the SYN,ACK said")
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.SyncookiesSent)
	assert.Equal(t, uint64(1), st.SyncookiesRecv)
	assert.Zero(t, st.SyncookiesFailed)

	// The first data segment: as large as the MSS the cookie kept (less
	// the timestamps option) and the peer's window allow. The window 100
	// is scaled by the peer's shift only if the cookie kept it.
	wantMSS := 536
	for _, m := range []uint16{1300, 1440, 1460} {
		if mss >= m {
			wantMSS = int(m)
		}
	}
	peerShift, ourShift := 0, 0
	if used && ws != nil {
		peerShift, ourShift = int(*ws), int(s.shift())
	}
	optLen, echo := 0, (*tsOpt)(nil)
	if used {
		optLen, echo = 12, p.ourTS(7001)
	}
	_, err = c.Write(data(0, 20000))
	require.NoError(t, err)
	// The first segment is as large as the MSS and the peer's window
	// allow; it is pushed when it passes half that window (forced push).
	n, flags := min(wantMSS-optLen, 100<<peerShift), "."
	if n > 100<<peerShift/2 {
		flags = "P."
	}
	p.expect(t, seg{flags: flags, seq: cookie + 1, ack: peerISN + 1,
		win: uint16(min(s.rcvCap()>>ourShift, 0xffff)), ts: echo, payload: data(0, n)})
}

// The handshake's ACK may be lost: the peer's first data segment then
// carries the cookie, and its data is kept.
func TestSyncookieDataSegment(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1})
	l := cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	cookie, tsval := cookieSYNACK(t, p, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460, ws: wscale(7), ts: ts(100, 0)})
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: cookie + 1, win: 512, ts: ts(101, tsval), payload: []byte("hello")})
	p.expect(t, seg{flags: ".", seq: cookie + 1, ack: peerISN + 6, win: uint16((s.rcvCap() - 5) >> ourShift), ts: p.ourTS(101)})
	c, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, "hello", string(readAll(t, c)))
}

// An ACK whose acknowledgment number is not a cookie we made for its
// 4-tuple and the peer's ISN draws a reset and is counted, as any stray
// ACK to a listener is reset.
func TestSyncookieForged(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1})
	l := cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	cookie, _ := cookieSYNACK(t, p, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	for i, forged := range []seg{
		{flags: ".", seq: peerISN + 1, ack: cookie + 1000, win: 100},      // another cookie
		{flags: ".", seq: peerISN + 1, ack: cookie + 1<<24 + 1, win: 100}, // another count
		{flags: ".", seq: peerISN + 1001, ack: cookie + 1, win: 100},      // another ISN of the peer
	} {
		p.send(t, forged)
		p.expect(t, seg{flags: "R", seq: forged.ack})
		assert.Equal(t, uint64(i+1), s.tb.Stats().SyncookiesFailed)
	}
	// The same cookie from another port of the peer.
	other := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	other.send(t, seg{flags: ".", seq: peerISN + 1, ack: cookie + 1, win: 100})
	other.expect(t, seg{flags: "R", seq: cookie + 1})
	st := s.tb.Stats()
	assert.Equal(t, uint64(4), st.SyncookiesFailed)
	assert.Zero(t, st.SyncookiesRecv)
	_, err := l.Accept()
	assert.ErrorIs(t, err, tcp.ErrWouldBlock)
	assert.Equal(t, 1, s.tb.Len(), "only the filler's half-open connection")
}

// A cookie lives 64–128 s (two ticks of its 64 s counter): it is good a
// minute later, and refused once its count is two ticks old, while the
// listener still sends cookies.
func TestSyncookieStale(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1, SynAckRetries: -1})
	l := cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	late := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	cookie, _ := cookieSYNACK(t, p, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	lateCookie, _ := cookieSYNACK(t, late, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})

	// The filler's half-open connection is gone after 1 s (no retries).
	s.advance(100 * time.Second)
	require.Zero(t, l.HalfOpen())
	late.send(t, seg{flags: ".", seq: peerISN + 1, ack: lateCookie + 1, win: 100})
	s.expectNothing(t)
	assert.Equal(t, uint64(1), s.tb.Stats().SyncookiesRecv)

	// A flood at 127 s keeps the listener sending cookies.
	s.advance(27 * time.Second)
	for port := uint16(40002); port < 40004; port++ {
		f := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, port))
		f.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
		_, _, _, ok := s.next(t)
		require.True(t, ok)
	}
	assert.Equal(t, uint64(3), s.tb.Stats().SyncookiesSent)
	s.advance(1500 * ms) // 128.5 s: the counter's third tick
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: cookie + 1, win: 100})
	p.expect(t, seg{flags: "R", seq: cookie + 1})
	assert.Equal(t, uint64(1), s.tb.Stats().SyncookiesFailed)
}

// Once the listener has sent no cookie for their lifetime, ACKs are not
// checked as cookies at all (Linux's tcp_synq_no_recent_overflow): a
// blind guess has nothing to hit.
func TestSyncookieOnlyAfterOverflow(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1})
	cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	cookie, _ := cookieSYNACK(t, p, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	s.advance(128 * time.Second)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: cookie + 1, win: 100})
	p.expect(t, seg{flags: "R", seq: cookie + 1})
	st := s.tb.Stats()
	assert.Zero(t, st.SyncookiesFailed+st.SyncookiesRecv)

	// A listener that never overflowed resets ACKs unchecked.
	s2 := newStack(t, tcp.Config{})
	_, p2 := listen(t, s2, 8)
	p2.send(t, seg{flags: ".", seq: peerISN + 1, ack: cookie + 1, win: 100})
	p2.expect(t, seg{flags: "R", seq: cookie + 1})
	assert.Zero(t, s2.tb.Stats().SyncookiesFailed)
}

// With NoSyncookies, a SYN that finds the SYN queue full gets no cookie.
func TestSyncookiesOff(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1, NoSyncookies: true})
	cookieListener(t, s, 8)
	p := s.peer(serverAddr, clientAddr)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	assert.Zero(t, s.tb.Stats().SyncookiesSent)
}

// A valid cookie ACK that finds the accept queue full is dropped, as any
// handshake's last ACK is then (ListenOverflows): the peer's next segment
// carries the cookie again and gets in once the app has accepted.
func TestSyncookieAcceptQueueFull(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1})
	l := cookieListener(t, s, 1)
	filler := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 1))
	p := s.peer(serverAddr, clientAddr)
	cookie, _ := cookieSYNACK(t, p, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	filler.send(t, seg{flags: ".", seq: 2, ack: filler.isn() + 1, win: 100})
	require.Equal(t, 1, l.Pending())

	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: cookie + 1, win: 100, payload: []byte("x")})
	s.expectNothing(t)
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.SyncookiesRecv)
	assert.Equal(t, uint64(1), st.ListenOverflows)
	assert.Equal(t, uint64(1), st.ListenDrops)
	assert.Equal(t, 1, s.tb.Len())

	_, err := l.Accept()
	require.NoError(t, err)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: cookie + 1, win: 100, payload: []byte("x")})
	p.expect(t, seg{flags: ".", seq: cookie + 1, ack: peerISN + 2, win: 65535})
	c, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, "x", string(readAll(t, c)))
}

// A half-open connection whose peer never answers is dropped after
// Config.SynAckRetries retransmissions (Linux's tcp_synack_retries, 5): at
// 1, 3, 7, 15 and 31 s, and it is gone at 63 s, its place in the SYN queue
// free.
func TestSynAckRetriesExpire(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, p := listen(t, s, 8)
	iss := p.isn()
	synack := seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460}
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, synack)
	for _, at := range []time.Duration{1, 3, 7, 15, 31} {
		s.advanceToDeadline(t)
		require.Equal(t, at*time.Second, s.now)
		p.expect(t, synack)
	}
	s.advanceToDeadline(t)
	assert.Equal(t, 63*time.Second, s.now)
	s.expectNothing(t)
	s.expectEmpty(t)
	assert.Zero(t, l.HalfOpen())
	assert.Equal(t, uint64(1), s.tb.Stats().AttemptFails)
}

// The case: 260 spoofed SYNs that are never answered fill the
// 256-entry SYN queue, and a legitimate connect right after succeeds at
// once: by a cookie, or without cookies by taking the oldest spoofed
// entry's place.
func TestSynFloodThenConnect(t *testing.T) {
	for _, noCookies := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSyncookies=%v", noCookies), func(t *testing.T) {
			s := newStack(t, tcp.Config{NoSyncookies: noCookies})
			l, err := s.tb.Listen(serverAddr, 16)
			require.NoError(t, err)
			spoofed := netip.MustParseAddr("198.19.0.7")
			for i := range 260 {
				f := s.peer(serverAddr, netip.AddrPortFrom(spoofed, uint16(1024+i)))
				f.send(t, seg{flags: "S", seq: uint32(i), win: 65535, mss: 1460})
				_, _, _, ok := s.next(t)
				require.True(t, ok, "SYN %d unanswered", i)
			}
			assert.Equal(t, 256, l.HalfOpen())
			p := s.peer(serverAddr, clientAddr)
			p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
			got, _, _, ok := s.next(t)
			require.True(t, ok)
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: got.seq + 1, win: 100})
			c, err := l.Accept()
			require.NoError(t, err)
			assert.Equal(t, clientAddr, c.RemoteAddr())
			st := s.tb.Stats()
			if noCookies {
				assert.Equal(t, uint64(5), st.ListenDrops, "the oldest spoofed entries evicted")
			} else {
				assert.Equal(t, uint64(5), st.SyncookiesSent)
				assert.Equal(t, uint64(1), st.SyncookiesRecv)
			}
		})
	}
}
