package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// peerTS is the scripted peer's timestamp clock at its SYN.
const peerTS = 7_000_000

// serverConnTS is serverConn with a peer that offers timestamps: TSval
// peerTS in its SYN, peerTS+10 in its ACK 10 ms later.
func serverConnTS(t testing.TB, s *stack, mss uint16) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	l, p := listen(t, s, 16)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: mss, ws: wscale(peerShift), ts: ts(peerTS, 0)})
	synack := p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: s.synWin(), mss: 1460, ws: wscale(s.shift()),
		ts: ts(p.tsval(), peerTS)})
	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, ts: ts(peerTS+10, synack.ts.val)})
	s.expectNothing(t)
	c, err := l.Accept()
	require.NoError(t, err)
	require.Equal(t, tcp.Established, c.State())
	return p, c, iss
}

// clientConnTS is clientConn with a peer that answers our timestamps:
// its SYN,ACK comes 100 ms after our SYN with TSval peerTS.
func clientConnTS(t testing.TB, s *stack, mss uint16) (*peer, *tcp.Conn, uint32) {
	t.Helper()
	p, c, iss := dialSYN(t, s)
	synTS := p.tsval()
	s.advance(100 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: mss, ws: wscale(peerShift), ts: ts(peerTS, synTS)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: uint16(s.rcvCap() >> s.shift()), ts: ts(p.tsval(), peerTS)})
	require.Equal(t, tcp.Established, c.State())
	return p, c, iss
}

// An active open offers timestamps (TSecr zero: no ACK yet, RFC 7323
// 3.2); a peer that answers with them gets them on every segment, its
// TSval echoed. The first RTT sample is the SYN's.
func TestTimestampsActive(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConnTS(t, s, 1460)
	srtt, _ := c.SRTT()
	assert.Equal(t, 100*ms, srtt)

	s.advance(5 * ms)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 10), ts: ts(peerTS+105, p.tsval()-5)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 11, win: (131072 - 12) >> ourShift, ts: ts(p.tsval(), peerTS+105)})
	_, err := c.Write(data(0, 20))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 11, win: (131072 - 12) >> ourShift, payload: data(0, 20), ts: ts(p.tsval(), peerTS+105)})

	// A RST carries none (RFC 7323 3.2 lets it go without).
	c.Abort()
	p.expect(t, seg{flags: "R.", seq: iss + 21, ack: peerISN + 11})
}

// A passive open answers timestamps with timestamps (and echoes the SYN's
// TSval); without them in the SYN, there are none on either side.
func TestTimestampsPassive(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConnTS(t, s, 1460)
	s.advance(ms)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100), ts: ts(peerTS+11, p.tsval()-1)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift, ts: ts(p.tsval(), peerTS+11)})
	assert.Equal(t, data(0, 100), readAll(t, c))

	// A peer without them: serverConn's SYN has none, nor has the
	// SYN,ACK (serverConn checks) or what follows.
	s2 := newStack(t, tcp.Config{})
	p2, c2, iss2 := serverConn(t, s2, 1460)
	_, err := c2.Write(data(0, 10))
	require.NoError(t, err)
	p2.expect(t, seg{flags: "P.", seq: iss2 + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 10)})
}

// Config.NoTimestamps: our SYN offers none, and a peer's offer is not
// taken up.
func TestNoTimestamps(t *testing.T) {
	s := newStack(t, tcp.Config{NoTimestamps: true})
	p, _, iss := dialSYN(t, s) // p.syn: no TSopt with NoTimestamps
	s.advance(10 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460, ts: ts(peerTS, 1)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535})

	_, err := s.tb.Listen(serverAddr, 4)
	require.NoError(t, err)
	q := s.peer(serverAddr, clientAddr)
	qiss := q.isn()
	q.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460, ws: wscale(peerShift), ts: ts(peerTS, 0)})
	q.expect(t, seg{flags: "S.", seq: qiss, ack: peerISN + 1, win: synWin, mss: 1460, ws: wscale(ourShift)})
}

// TS.Recent follows RFC 7323 4.3: of a batch of segments, the ACK echoes
// the first one's TSval (the one at Last.ACK.sent); a segment after a hole
// does not change it; the one that fills the hole does.
func TestTimestampsEcho(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, _, iss := serverConnTS(t, s, 1460)
	s.advance(ms)
	ecr := p.tsval()
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100), ts: ts(peerTS+20, ecr)})
	p.send(t, seg{flags: ".", seq: peerISN + 101, ack: iss + 1, win: 512, payload: data(100, 100), ts: ts(peerTS+21, ecr)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 201, win: (131072 - 200) >> ourShift, ts: ts(p.tsval(), peerTS+20)})

	// A hole at 201: the segment after it is acknowledged at once, with
	// the old echo.
	p.send(t, seg{flags: ".", seq: peerISN + 301, ack: iss + 1, win: 512, payload: data(300, 100), ts: ts(peerTS+30, ecr)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 201, win: (131072 - 200) >> ourShift, ts: ts(p.tsval(), peerTS+20)})
	// The retransmission that fills it: its TSval is echoed.
	p.send(t, seg{flags: ".", seq: peerISN + 201, ack: iss + 1, win: 512, payload: data(200, 100), ts: ts(peerTS+40, ecr)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 401, win: (131072 - 400) >> ourShift, ts: ts(p.tsval(), peerTS+40)})
}

// With timestamps, the ACK of a retransmitted segment gives an RTT
// sample from its echo (RFC 7323 4.1), where Karn's rule alone gives none
// (TestRetransmitBackoffAndKarn), and it ends the backoff.
func TestTimestampsRTTAfterRetransmission(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true}) // the RTO alone: no loss probe (tlp_test.go has those)
	p, c, iss := clientConnTS(t, s, 1460)
	srtt, rto := c.SRTT()
	require.Equal(t, 100*ms, srtt) // the SYN's: RTTVAR 50 ms
	require.Equal(t, 300*ms, rto)

	_, err := c.Write(data(0, 100))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 100), ts: ts(p.tsval(), peerTS)})
	s.advance(300 * ms)
	rexmit := p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 100), ts: ts(p.tsval(), peerTS)})
	_, rto = c.SRTT()
	require.Equal(t, 600*ms, rto, "backed off")

	// The ACK 40 ms later echoes the retransmission: a 40 ms sample.
	s.advance(40 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 101, win: 512, ts: ts(peerTS+440, rexmit.ts.val)})
	s.expectNothing(t)
	srtt, rto = c.SRTT()
	// RFC 6298 2.3: RTTVAR = 3/4·50 + 1/4·|100−40| = 52.5 ms, SRTT =
	// 7/8·100 + 1/8·40 = 92.5 ms; RTO = SRTT + 4·RTTVAR, not backed off.
	assert.Equal(t, 92500*time.Microsecond, srtt)
	assert.Equal(t, 302500*time.Microsecond, rto)
	assert.Equal(t, uint64(1), c.Stats().Retransmits)

	// Every ACK of new data gives a sample: the timed segment's from our
	// clock, the others' from their echo (sent 10 ms apart, ACKed 30 ms
	// after the first: samples of 30 ms and 20 ms).
	_, err = c.Write(data(100, 10))
	require.NoError(t, err)
	first := p.expect(t, seg{flags: "P.", seq: iss + 101, ack: peerISN + 1, win: fullWin, payload: data(100, 10), ts: ts(p.tsval(), peerTS+440)})
	s.advance(10 * ms)
	_, err = c.Write(data(110, 10))
	require.NoError(t, err)
	second := p.expect(t, seg{flags: "P.", seq: iss + 111, ack: peerISN + 1, win: fullWin, payload: data(110, 10), ts: ts(p.tsval(), peerTS+440)})
	s.advance(20 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 111, win: 512, ts: ts(peerTS+470, first.ts.val)})
	before, _ := c.SRTT()
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 121, win: 512, ts: ts(peerTS+470, second.ts.val)})
	after, _ := c.SRTT()
	assert.Equal(t, srtt+(30*ms-srtt)/8, before)
	assert.Equal(t, before+(20*ms-before)/8, after)
}

// The SYN,ACK that answers a retransmitted SYN gives a sample from its
// echo, where Karn's rule alone gives none (TestSYNRetransmitKarn).
func TestSYNRetransmitTimestamps(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	s.advance(time.Second)
	syn := p.expect(t, p.syn(iss))
	s.advance(50 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460, ts: ts(peerTS, syn.ts.val)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535, ts: ts(p.tsval(), peerTS)})
	srtt, rto := c.SRTT()
	assert.Equal(t, 50*ms, srtt)
	assert.Equal(t, 200*ms, rto, "the floor: no backoff left")
}

// PAWS (RFC 7323 5.3): a segment with a TSval older than TS.Recent is an
// old duplicate, acknowledged and dropped though its sequence number is
// the one expected; a RST is exempt.
func TestPAWS(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConnTS(t, s, 1460)
	s.advance(ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100), ts: ts(peerTS+100, 0)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift, ts: ts(p.tsval(), peerTS+100)})

	p.send(t, seg{flags: ".", seq: peerISN + 101, ack: iss + 1, win: 512, payload: data(100, 100), ts: ts(peerTS+99, 0)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift, ts: ts(p.tsval(), peerTS+100)})
	s.expectNothing(t)
	assert.Equal(t, data(0, 100), readAll(t, c))
	assert.Equal(t, uint64(1), s.tb.Stats().PAWSDrops)
	// The same TSval is not older: taken.
	p.send(t, seg{flags: ".", seq: peerISN + 101, ack: iss + 1, win: 512, payload: data(100, 100), ts: ts(peerTS+100, 0)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 201, win: keptWin(131072 - 200), ts: ts(p.tsval(), peerTS+100)})
	assert.Equal(t, data(100, 100), readAll(t, c))

	// After 24 days without a new TS.Recent it is no longer valid (RFC
	// 7323 5.5): the old TSval passes, and becomes TS.Recent.
	s.advance(25 * 24 * time.Hour)
	p.send(t, seg{flags: ".", seq: peerISN + 201, ack: iss + 1, win: 512, payload: data(200, 10), ts: ts(peerTS+50, 0)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 211, win: keptWin(131072 - 200 - 10), ts: ts(p.tsval(), peerTS+50)})

	// A RST with an old TSval resets all the same.
	p.send(t, seg{flags: "R", seq: peerISN + 211, ts: ts(peerTS+1, 0)})
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), tcp.ErrReset)
	assert.Equal(t, uint64(1), s.tb.Stats().PAWSDrops)
}

// Segments shrink by the 12 bytes of the option: the MSS the peer
// announces counts none (RFC 6691).
func TestTimestampsMSS(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConnTS(t, s, 1000)
	_, err := c.Write(data(0, 2000))
	require.NoError(t, err)
	echo := ts(p.tsval(), peerTS+10)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 988), ts: echo})
	p.expect(t, seg{flags: ".", seq: iss + 989, ack: peerISN + 1, win: fullWin, payload: data(988, 988), ts: echo})
	p.expect(t, seg{flags: "P.", seq: iss + 1977, ack: peerISN + 1, win: fullWin, payload: data(1976, 24), ts: echo})

	// Without timestamps the whole MSS is payload (the default 1460 with
	// a 1500-byte MTU: frames of exactly 1500 bytes).
	s2 := newStack(t, tcp.Config{NoTimestamps: true})
	p2, c2, iss2 := serverConn(t, s2, 1460)
	_, err = c2.Write(data(0, 1500))
	require.NoError(t, err)
	p2.expect(t, seg{flags: ".", seq: iss2 + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1460)})
	p2.expect(t, seg{flags: "P.", seq: iss2 + 1461, ack: peerISN + 1, win: fullWin, payload: data(1460, 40)})
}

// timeWaitTS takes a passive connection with timestamps to TIME-WAIT
// (the table closes first); the peer's last TSval is peerTS+50. It
// returns the listener's peer, the table's SND.NXT and RCV.NXT there.
func timeWaitTS(t *testing.T, s *stack) (*peer, *tcp.Conn, uint32, uint32) {
	t.Helper()
	p, c, iss := serverConnTS(t, s, 1460)
	s.advance(ms)
	_, err := c.Write(data(0, 1000))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "FP.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000), ts: ts(p.tsval(), peerTS+10)})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1002, win: 512, ts: ts(peerTS+50, p.tsval())})
	p.expect(t, seg{flags: ".", seq: iss + 1002, ack: peerISN + 2, win: (131072 - 1) >> ourShift, ts: ts(p.tsval(), peerTS+50)})
	require.Equal(t, tcp.TimeWait, c.State())
	return p, c, iss + 1002, peerISN + 2
}

// A SYN in TIME-WAIT with timestamps on both sides (RFC 6191, as Linux):
// an older TSval refuses it though its sequence number is new (PAWS: an
// ACK answers, TIME-WAIT goes on); a newer one reopens the 4-tuple though
// its sequence number is old, with an ISN past the old SND.NXT.
func TestSYNInTimeWaitTimestamps(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, sndNxt, rcvNxt := timeWaitTS(t, s)
	s.advance(time.Second)

	p.send(t, seg{flags: "S", seq: peerISN + 100000, win: 65535, mss: 1460, ts: ts(peerTS+49, 0)})
	p.expect(t, seg{flags: ".", seq: sndNxt, ack: rcvNxt, win: (131072 - 1) >> ourShift, ts: ts(p.tsval(), peerTS+50)})
	s.expectNothing(t)
	assert.Equal(t, tcp.TimeWait, c.State())

	old := rcvNxt - 3000
	p.send(t, seg{flags: "S", seq: old, win: 65535, mss: 1460, ws: wscale(peerShift), ts: ts(peerTS+1050, 0)})
	newISS := sndNxt + 65537
	p.expect(t, seg{flags: "S.", seq: newISS, ack: old + 1, win: synWin, mss: 1460, ws: wscale(ourShift),
		ts: ts(p.tsval(), peerTS+1050)})
	assert.Equal(t, tcp.Closed, c.State())
	assert.Equal(t, uint64(1), s.tb.Stats().TimeWaitRecycled)
}

// A SYN with an equal TSval is neither refused nor accepted by it: the
// sequence number decides, as without timestamps.
func TestSYNInTimeWaitEqualTimestamp(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, sndNxt, rcvNxt := timeWaitTS(t, s)
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460, ts: ts(peerTS+50, 0)})
	p.expect(t, seg{flags: ".", seq: sndNxt, ack: rcvNxt, win: (131072 - 1) >> ourShift, ts: ts(p.tsval(), peerTS+50)})
	assert.Equal(t, tcp.TimeWait, c.State())
	p.send(t, seg{flags: "S", seq: rcvNxt + 10, win: 65535, mss: 1460, ts: ts(peerTS+50, 0)})
	p.expect(t, seg{flags: "S.", seq: sndNxt + 65537, ack: rcvNxt + 11, win: synWin, mss: 1460, ts: ts(p.tsval(), peerTS+50)})
	assert.Equal(t, tcp.Closed, c.State())
}
