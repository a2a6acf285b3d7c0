package tcp_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// RFC 9293 3.10.7.1: a segment to a closed port draws a RST: a SYN (or
// any segment without ACK) one with ACK = SEQ + LEN; one with an ACK a
// RST with SEQ = its ACK; a RST nothing.
func TestClosedPortRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p := s.peer(serverAddr, clientAddr)
	p.send(t, seg{flags: "S", seq: 1000, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "R.", seq: 0, ack: 1001})
	p.send(t, seg{flags: "S", seq: 1000, win: 65535, payload: data(0, 10)})
	p.expect(t, seg{flags: "R.", seq: 0, ack: 1011})
	p.send(t, seg{flags: ".", seq: 1000, ack: 3333, win: 100})
	p.expect(t, seg{flags: "R", seq: 3333})
	p.send(t, seg{flags: "P.", seq: 1000, ack: 4444, win: 100, payload: data(0, 10)})
	p.expect(t, seg{flags: "R", seq: 4444})
	p.send(t, seg{flags: "R.", seq: 1000, ack: 4444})
	p.send(t, seg{flags: "R", seq: 1000})
	s.expectNothing(t)
	assert.Equal(t, uint64(4), s.tb.Stats().OutRsts)
	assert.Zero(t, s.tb.Len())
}

// SYN-SENT (RFC 9293 3.10.7.3): a RST with an acceptable ACK refuses the
// connection; one without an ACK, or with an unacceptable one, is
// ignored; an unacceptable ACK without RST draws a RST.
func TestSynSentRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)

	p.send(t, seg{flags: "R", seq: 0})
	p.send(t, seg{flags: "R.", seq: 0, ack: iss + 2})
	p.send(t, seg{flags: "R.", seq: 0, ack: iss})
	s.expectNothing(t)
	assert.Equal(t, tcp.SynSent, c.State())
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 5, win: 100})
	p.expect(t, seg{flags: "R", seq: iss + 5})
	assert.Equal(t, tcp.SynSent, c.State())

	p.send(t, seg{flags: "R.", seq: 0, ack: iss + 1})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), syscall.ECONNREFUSED)
	assert.ErrorIs(t, c.Err(), tcp.ErrRefused)
	r, ok := s.tb.NextReady()
	require.True(t, ok)
	assert.Same(t, c, r)
	assert.Equal(t, uint64(1), s.tb.Stats().AttemptFails)
	s.expectEmpty(t)
}

// ESTABLISHED: a RST at exactly RCV.NXT resets (ECONNRESET); one
// elsewhere in the window draws a challenge ACK (RFC 5961 3.2); one
// outside the window is dropped.
func TestEstablishedRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)

	p.send(t, seg{flags: "R", seq: peerISN + 100})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t)
	p.send(t, seg{flags: "R", seq: peerISN + 1 + 200000})
	p.send(t, seg{flags: "R", seq: peerISN})
	s.expectNothing(t)
	assert.Equal(t, tcp.Established, c.State())

	p.send(t, seg{flags: "R", seq: peerISN + 1})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), syscall.ECONNRESET)
	_, err := c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	assert.Equal(t, uint64(1), s.tb.Stats().EstabResets)
	s.expectEmpty(t)
}

// With a zero receive window only a RST at exactly RCV.NXT is
// acceptable (RFC 9293 3.10.7.4).
func TestZeroWindowRST(t *testing.T) {
	s := newStack(t, tcp.Config{RecvBuffer: 1024})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 1024)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1025, win: 0})
	p.send(t, seg{flags: "R", seq: peerISN + 1026})
	s.expectNothing(t)
	assert.Equal(t, tcp.Established, c.State())
	p.send(t, seg{flags: "R", seq: peerISN + 1025})
	assert.ErrorIs(t, c.Err(), syscall.ECONNRESET)
}

// A SYN in a synchronized state draws a challenge ACK and changes nothing
// (RFC 5961 4.2, RFC 9293 3.10.7.4).
func TestEstablishedSYNChallengeACK(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "S", seq: peerISN + 10, win: 65535, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.advance(500 * ms) // past the rate limit (ratelimit_test.go)
	p.send(t, seg{flags: "S", seq: 12345678, win: 65535, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t)
	assert.Equal(t, tcp.Established, c.State())
}

// ACKs of data never sent are answered with an ACK and dropped; ones far
// older than the window are blind injections (RFC 5961 5.2).
func TestUnacceptableACKs(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 100, win: 512, payload: data(0, 10)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	assert.Zero(t, c.Readable(), "the segment is dropped")
	s.advance(500 * ms) // past the rate limit (ratelimit_test.go)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss - 1000000, win: 512, payload: data(0, 10)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	assert.Zero(t, c.Readable())
	s.expectNothing(t)
}

// A RST closes CLOSING and LAST-ACK silently.
func TestRSTInClosingAndLastAck(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	require.Equal(t, tcp.Closing, c.State())
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: keptWin(131072 - 1)})
	p.send(t, seg{flags: "R", seq: peerISN + 2})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	s.expectEmpty(t)

	s = newStack(t, tcp.Config{})
	p, c, iss = serverConn(t, s, 1460)
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2, win: fullWin})
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 2, win: fullWin})
	require.Equal(t, tcp.LastAck, c.State())
	p.send(t, seg{flags: "R", seq: peerISN + 2})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	s.expectEmpty(t)
}

// Abort sends a RST in a synchronized state and drops unsent data.
func TestAbort(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 0})
	_, err := c.Write(data(0, 100))
	require.NoError(t, err)
	s.expectNothing(t)
	c.Abort()
	p.expect(t, seg{flags: "R.", seq: iss + 1, ack: peerISN + 1})
	s.expectNothing(t)
	assert.ErrorIs(t, c.Err(), syscall.ECONNABORTED)
	s.expectEmpty(t)
}

// CloseWrite then Abort (SO_LINGER 0) before the FIN went out: the FIN
// goes first, then the RST from past it, as Linux (whose shutdown sends
// the FIN at once) puts them on the wire. With data still unsent the FIN
// is not due: only the RST.
func TestCloseWriteThenAbort(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.CloseWrite())
	c.Abort()
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.expect(t, seg{flags: "R.", seq: iss + 2, ack: peerISN + 1})
	s.expectNothing(t)
	assert.Equal(t, uint64(1), s.tb.Stats().OutRsts)
	s.expectEmpty(t)

	// The FIN sent already: the RST alone, from past it.
	s = newStack(t, tcp.Config{})
	p, c, iss = clientConn(t, s, 1460)
	require.NoError(t, c.CloseWrite())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	c.Abort()
	p.expect(t, seg{flags: "R.", seq: iss + 2, ack: peerISN + 1})
	s.expectNothing(t)

	// Data not sent yet (a zero window): the RST alone.
	s = newStack(t, tcp.Config{})
	p, c, iss = clientConn(t, s, 1460)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 0})
	_, err := c.Write(data(0, 100))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	c.Abort()
	p.expect(t, seg{flags: "R.", seq: iss + 1, ack: peerISN + 1})
	s.expectNothing(t)
}
