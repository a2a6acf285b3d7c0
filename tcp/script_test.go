package tcp_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/tcp"
)

// A packetdrill-style scripted peer: the test plays the remote TCP, feeds
// the table exact segments and asserts the exact segments it answers
// with, in virtual time.
//
//	p.send(t, seg{flags: "S", seq: 1000, win: 65535, mss: 1460, ws: wscale(7)})
//	p.expect(t, seg{flags: "S.", seq: iss, ack: 1001, win: 65535, mss: 1460, ws: wscale(2)})
//
// Flags are written as packetdrill writes them: S SYN, F FIN, R RST, P PSH,
// and "." for ACK ("S." is SYN,ACK; "P." PSH,ACK; "F." FIN,ACK).

var (
	localAddr  = netip.MustParseAddr("198.18.0.2") // the table's address
	remoteAddr = netip.MustParseAddr("198.18.0.1") // the scripted peer's
	secret     = [16]byte{1}
)

const (
	ms = time.Millisecond
	// bufLen is the room Output gets: a 1500-byte MTU less the IPv4 header.
	bufLen = 1500 - 20
)

// seg is a segment as the script writes it.
type seg struct {
	flags   string
	seq     uint32
	ack     uint32
	win     uint16
	mss     uint16 // 0: no MSS option
	ws      *uint8 // nil: no window scale option
	ts      *tsOpt // nil: no timestamps option
	sackOK  bool   // the SACK-permitted option
	sack    []wire.SACKBlock
	payload []byte
}

// wscale is a window scale option of shift n.
func wscale(n uint8) *uint8 { return &n }

// tsOpt is a timestamps option (RFC 7323 3).
type tsOpt struct{ val, ecr uint32 }

// ts is a timestamps option of TSval val and TSecr ecr.
func ts(val, ecr uint32) *tsOpt { return &tsOpt{val, ecr} }

// String writes s as tcpdump and packetdrill do:
// "S. 1000:1000(0) ack 5001 win 65535 <mss 1460,wscale 7>".
func (s seg) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:%d(%d)", s.flags, s.seq, s.seq+uint32(len(s.payload)), len(s.payload))
	if strings.Contains(s.flags, ".") {
		fmt.Fprintf(&b, " ack %d", s.ack)
	}
	fmt.Fprintf(&b, " win %d", s.win)
	var opts []string
	if s.mss != 0 {
		opts = append(opts, fmt.Sprintf("mss %d", s.mss))
	}
	if s.ws != nil {
		opts = append(opts, fmt.Sprintf("wscale %d", *s.ws))
	}
	if s.ts != nil {
		opts = append(opts, fmt.Sprintf("TS val %d ecr %d", s.ts.val, s.ts.ecr))
	}
	if s.sackOK {
		opts = append(opts, "sackOK")
	}
	if len(s.sack) > 0 {
		var b strings.Builder
		for _, blk := range s.sack {
			fmt.Fprintf(&b, "{%d:%d}", blk.Left, blk.Right)
		}
		opts = append(opts, fmt.Sprintf("sack %d %s", len(s.sack), b.String()))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, " <%s>", strings.Join(opts, ","))
	}
	return b.String()
}

// flagBits turns "S." into SYN|ACK.
func flagBits(t testing.TB, f string) uint8 {
	t.Helper()
	var bits uint8
	for _, r := range f {
		switch r {
		case 'S':
			bits |= wire.TCPFlagSYN
		case 'F':
			bits |= wire.TCPFlagFIN
		case 'R':
			bits |= wire.TCPFlagRST
		case 'P':
			bits |= wire.TCPFlagPSH
		case '.':
			bits |= wire.TCPFlagACK
		default:
			t.Fatalf("unknown flag %q in %q", r, f)
		}
	}
	return bits
}

// flagString is flagBits' inverse, in packetdrill's order.
func flagString(bits uint8) string {
	var b strings.Builder
	for _, f := range []struct {
		bit uint8
		c   byte
	}{{wire.TCPFlagSYN, 'S'}, {wire.TCPFlagFIN, 'F'}, {wire.TCPFlagRST, 'R'}, {wire.TCPFlagPSH, 'P'}, {wire.TCPFlagACK, '.'}} {
		if bits&f.bit != 0 {
			b.WriteByte(f.c)
		}
	}
	if bits&^(wire.TCPFlagSYN|wire.TCPFlagFIN|wire.TCPFlagRST|wire.TCPFlagPSH|wire.TCPFlagACK) != 0 {
		fmt.Fprintf(&b, "+%#x", bits)
	}
	return b.String()
}

// stack is a table and its virtual clock.
type stack struct {
	tb  *tcp.Table
	cfg tcp.Config
	now time.Duration
}

// newStack makes a table with cfg, which gets the local address and the
// fixed secret unless it has its own.
func newStack(t testing.TB, cfg tcp.Config) *stack {
	t.Helper()
	if cfg.Addrs == nil {
		cfg.Addrs = []netip.Addr{localAddr}
	}
	if cfg.Secret == ([16]byte{}) {
		cfg.Secret = secret
	}
	tb, err := tcp.New(cfg)
	require.NoError(t, err)
	return &stack{tb: tb, cfg: cfg}
}

// advance moves virtual time on by d and runs the timers due.
func (s *stack) advance(d time.Duration) {
	s.now += d
	s.tb.RunTimers(s.now)
}

// advanceToDeadline moves virtual time to the next timer and runs it,
// and returns how far time moved.
func (s *stack) advanceToDeadline(t testing.TB) time.Duration {
	t.Helper()
	at, ok := s.tb.Deadline()
	require.True(t, ok, "no timer runs")
	require.GreaterOrEqual(t, at, s.now)
	d := at - s.now
	s.advance(d)
	return d
}

// isn is the initial sequence number the table picks now for local and
// remote (RFC 6528, with the fixed secret).
func (s *stack) isn(local, remote netip.AddrPort) uint32 {
	return uint32(tcp.NewISNs(s.cfg.Secret).ISN(s.now, local, remote))
}

// peer is the scripted remote end of one 4-tuple.
type peer struct {
	*stack
	local  netip.AddrPort // the table's end
	remote netip.AddrPort // the script's end
}

func (s *stack) peer(local, remote netip.AddrPort) *peer {
	return &peer{stack: s, local: local, remote: remote}
}

// isn is the initial sequence number the table picks now for p's 4-tuple.
func (p *peer) isn() uint32 { return p.stack.isn(p.local, p.remote) }

// tsval is the TSval the table sends p now: the 4-tuple's offset plus
// the milliseconds of virtual time (RFC 7323 5.4).
func (p *peer) tsval() uint32 {
	return tcp.NewISNs(p.cfg.Secret).TSOffset(p.local, p.remote) + uint32(p.now/ms)
}

// ourTS is the timestamps option the table's segments carry now if it
// uses them, echoing ecr; nil with Config.NoTimestamps.
func (p *peer) ourTS(ecr uint32) *tsOpt {
	if p.cfg.NoTimestamps {
		return nil
	}
	return ts(p.tsval(), ecr)
}

// syn is the SYN the table sends now as it dials p from iss: the MSS,
// window scale, timestamps and SACK-permitted it offers.
func (p *peer) syn(iss uint32) seg {
	return seg{flags: "S", seq: iss, win: p.synWin(), mss: 1460, ws: wscale(p.shift()), ts: p.ourTS(0), sackOK: !p.cfg.NoSACK}
}

// send feeds the table the segment s from the peer.
func (p *peer) send(t testing.TB, s seg) {
	t.Helper()
	p.tb.Input(p.now, p.remote.Addr(), p.local.Addr(), p.encode(t, s))
}

// encode returns the segment s from the peer, as the table receives it.
func (p *peer) encode(t testing.TB, s seg) []byte {
	t.Helper()
	f := wire.TCPFields{
		SrcPort: p.remote.Port(), DstPort: p.local.Port(),
		Seq: s.seq, Ack: s.ack, Flags: flagBits(t, s.flags), Window: s.win,
		Options: wire.TCPOptions{MSS: s.mss, WindowScale: -1, SACKPermitted: s.sackOK},
	}
	if s.ws != nil {
		f.Options.WindowScale = int8(*s.ws)
	}
	if s.ts != nil {
		f.Options.HasTimestamps, f.Options.TSVal, f.Options.TSEcr = true, s.ts.val, s.ts.ecr
	}
	f.Options.NSACK = copy(f.Options.SACK[:], s.sack)
	b := make([]byte, f.HeaderLen()+len(s.payload))
	copy(b[f.HeaderLen():], s.payload)
	f.Encode(b, len(s.payload), p.remote.Addr(), p.local.Addr())
	return b
}

// next takes the next segment the table sends, if any, parsed.
func (s *stack) next(t testing.TB) (seg, wire.Out, wire.TCP, bool) {
	t.Helper()
	buf := make([]byte, bufLen)
	out, ok := s.tb.Output(s.now, buf)
	if !ok {
		return seg{}, out, nil, false
	}
	require.LessOrEqual(t, out.Len, bufLen)
	b := wire.TCP(buf[:out.Len])
	require.NoError(t, b.Check())
	require.Equal(t, uint8(wire.ProtoTCP), out.Proto)
	opts, err := wire.ParseTCPOptions(b.Options())
	require.NoError(t, err)
	got := seg{
		flags: flagString(b.Flags()), seq: b.Seq(), ack: b.Ack(), win: b.Window(),
		mss: opts.MSS, payload: append([]byte{}, b.Payload()...),
	}
	if opts.WindowScale >= 0 {
		got.ws = wscale(uint8(opts.WindowScale))
	}
	if opts.HasTimestamps {
		got.ts = ts(opts.TSVal, opts.TSEcr)
	}
	got.sackOK = opts.SACKPermitted
	if opts.NSACK > 0 {
		got.sack = append([]wire.SACKBlock{}, opts.SACK[:opts.NSACK]...)
	}
	return got, out, b, true
}

// expect asserts that the next segment the table sends is want, to the
// peer, exactly: flags, numbers, window, options and payload. It returns
// the segment.
func (p *peer) expect(t testing.TB, want seg) seg {
	t.Helper()
	got, out, b, ok := p.next(t)
	require.True(t, ok, "expected %v, got nothing", want)
	require.True(t, b.ChecksumValid(p.local.Addr(), out.Dst), "checksum of %v over our source address", got)
	require.Equal(t, p.remote.Addr(), out.Dst, "destination address of %v", got)
	require.Equal(t, p.local.Port(), b.SrcPort(), "source port of %v", got)
	require.Equal(t, p.remote.Port(), b.DstPort(), "destination port of %v", got)
	if !strings.Contains(want.flags, ".") {
		require.Zero(t, got.ack, "ack field without ACK: %v", got)
	}
	require.Equal(t, want.String(), got.String())
	if len(want.payload) == 0 {
		want.payload = []byte{}
	}
	require.Equal(t, want.payload, got.payload, "payload of %v", got)
	return got
}

// expectNothing asserts that the table has nothing to send.
func (s *stack) expectNothing(t testing.TB) {
	t.Helper()
	got, out, _, ok := s.next(t)
	require.False(t, ok, "expected nothing, got %v to %v", got, out.Dst)
}

// expectDeadline asserts when the next timer runs.
func (s *stack) expectDeadline(t testing.TB, at time.Duration) {
	t.Helper()
	d, ok := s.tb.Deadline()
	require.True(t, ok, "no timer runs")
	require.Equal(t, at, d, "deadline")
}

// expectEmpty asserts that the table holds no connection and no timer.
func (s *stack) expectEmpty(t testing.TB) {
	t.Helper()
	require.Zero(t, s.tb.Len(), "connections left")
	require.Zero(t, s.tb.Timers(), "timers left")
	_, ok := s.tb.Deadline()
	require.False(t, ok, "deadline left")
}

// data returns n bytes of a recognizable pattern starting at stream
// offset off, so segments can be cut from one stream.
func data(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (off+i)%26)
	}
	return b
}

// readAll reads what the connection holds.
func readAll(t testing.TB, c *tcp.Conn) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil || n == 0 {
			return out
		}
	}
}

// Addresses of the scripts.
var (
	serverAddr = netip.AddrPortFrom(localAddr, 8080)   // the table listening
	clientAddr = netip.AddrPortFrom(remoteAddr, 40000) // the peer connecting
	peerServer = netip.AddrPortFrom(remoteAddr, 80)    // the peer listening
)

// Default numbers: the peer's ISN, and the window field and shift the
// table announces with its default 128 KiB receive buffer, which may grow
// to 6 MiB.
const (
	peerISN = 5000
	// synWin is the window of the table's SYN (never scaled, RFC 7323
	// 2.2): 65535 of its 128 KiB.
	synWin = 65535
	// ourShift is the table's window scale for the 6 MiB the buffer may
	// grow to: 6291456>>7 fits.
	ourShift = 7
	// fullWin is the window field for 128 KiB scaled by ourShift.
	fullWin = 131072 >> ourShift
	// peerShift is the window scale the peer offers.
	peerShift = 7
)

// keptWin is the window field for a window of n bytes at ourShift that
// is kept, not opened: rounded up to the scale's unit, so the right edge
// the peer sees does not move left (as Linux's tcp_select_window), when
// the buffer has the room.
func keptWin(n int) uint16 { return uint16((n + 1<<ourShift - 1) >> ourShift) }

// rcvCap is the table's receive buffer: Config.RecvBuffer rounded up to
// a power of two.
func (s *stack) rcvCap() int {
	n := 1
	for n < max(s.cfg.RecvBuffer, 1) {
		n <<= 1
	}
	if s.cfg.RecvBuffer == 0 {
		n = 128 << 10
	}
	return n
}

// shift is the window scale the table asks for: the smallest that lets
// 16 bits cover the largest receive buffer (RFC 7323 2.2), 6 MiB unless
// the config says otherwise.
func (s *stack) shift() uint8 {
	most := s.cfg.RecvBufferMax
	if most == 0 {
		most = max(6<<20, s.rcvCap())
	}
	var sh uint8
	for most>>sh > 0xffff {
		sh++
	}
	return sh
}

// synWin is the window of the table's SYN or SYN,ACK.
func (s *stack) synWin() uint16 { return uint16(min(s.rcvCap(), 0xffff)) }

// serverConn runs a passive open to the table's listener at serverAddr
// from the peer at clientAddr: the peer offers mss and window scale 7.
// It returns the peer, the accepted connection and the table's ISS.
func serverConn(t testing.TB, s *stack, mss uint16) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	l, p := listen(t, s, 16)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: mss, ws: wscale(peerShift)})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: s.synWin(), mss: 1460, ws: wscale(s.shift())})
	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512}) // 512<<7 = 64 KiB
	s.expectNothing(t)
	c, err := l.Accept()
	require.NoError(t, err)
	require.Equal(t, tcp.Established, c.State())
	return p, c, iss
}

// listen listens on serverAddr with backlog and returns the listener and
// the peer that plays clientAddr.
func listen(t testing.TB, s *stack, backlog int) (*tcp.Listener, *peer) {
	t.Helper()
	l, err := s.tb.Listen(serverAddr, backlog)
	require.NoError(t, err)
	return l, s.peer(serverAddr, clientAddr)
}

// dialSYN dials peerServer and expects our SYN, with the MSS, window
// scale and timestamps we offer.
func dialSYN(t testing.TB, s *stack) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	c, err := s.tb.Dial(s.now, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	p := s.peer(c.LocalAddr(), peerServer)
	iss := p.isn()
	p.expect(t, p.syn(iss))
	return p, c, iss
}

// clientConn runs an active open from the table to the peer at
// peerServer: the peer answers with mss and window scale 7, and no
// timestamps. It returns the peer, the connection and the table's ISS.
func clientConn(t testing.TB, s *stack, mss uint16) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	p, c, iss := dialSYN(t, s)
	s.advance(100 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: mss, ws: wscale(peerShift)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: uint16(s.rcvCap() >> s.shift())})
	require.Equal(t, tcp.Established, c.State())
	return p, c, iss
}
