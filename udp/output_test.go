package udp

import (
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteToOutputRoundTrip(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "198.18.0.1:4000")
	dst := netip.MustParseAddrPort("198.18.1.1:53")
	nothingOut(t, tbl, "nothing to send yet")

	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 2, 3, 64, 1471, 1472} {
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		n, err := e.WriteTo(p, dst)
		require.NoError(t, err)
		require.Equal(t, size, n)
		out, u := emit(t, tbl, local1)
		assert.Equal(t, e.LocalAddr().Port(), u.SrcPort())
		assert.Equal(t, dst, netip.AddrPortFrom(out.Dst, u.DstPort()))
		assert.Equal(t, 8+size, out.Len)
		assert.Equal(t, p, u.Payload(), "byte-exact, size %d", size)
	}
	nothingOut(t, tbl, "all sent")
	assert.Equal(t, uint64(7), tbl.Stats().OutDatagrams)
}

func TestOutputWildcardSource(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:4000")
	_, err := e.WriteTo([]byte("x"), netip.MustParseAddrPort("198.18.1.1:53"))
	require.NoError(t, err)
	// The checksum covers the first of Config.Addrs: the stack's address,
	// which its ip layer writes.
	_, u := emit(t, tbl, local1)
	assert.Equal(t, "x", string(u.Payload()))
}

func TestMessageTooLong(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:4000")
	dst := netip.MustParseAddrPort("198.18.1.1:53")
	// Without DF, Linux's default: up to the largest IPv4 datagram, which
	// the ip layer fragments.
	_, err := e.WriteTo(make([]byte, 65508), dst)
	assert.ErrorIs(t, err, syscall.EMSGSIZE, "65,535 − 28")
	assert.ErrorIs(t, err, ErrMessageTooLong)
	_, err = e.WriteTo(make([]byte, 65507), dst)
	assert.NoError(t, err)
	out, _ := emit(t, tbl, local1)
	assert.Equal(t, 65515, out.Len, "65,535 − 20")

	// With DF (IP_PMTUDISC_DO): the MTU.
	df := newTable(t, Config{DontFragment: true})
	e = bind(t, df, "0.0.0.0:4000")
	_, err = e.WriteTo(make([]byte, 1473), dst)
	assert.ErrorIs(t, err, syscall.EMSGSIZE, "MTU 1500 − 28")
	_, err = e.WriteTo(make([]byte, 1472), dst)
	assert.NoError(t, err)

	jumbo := newTable(t, Config{MTU: 9000, SendQueueBytes: 9000, DontFragment: true})
	e = bind(t, jumbo, "0.0.0.0:4000")
	_, err = e.WriteTo(make([]byte, 8972), dst)
	assert.NoError(t, err)
	_, err = e.WriteTo(make([]byte, 8973), dst)
	assert.ErrorIs(t, err, syscall.EMSGSIZE)
	out, _ = emit(t, jumbo, local1)
	assert.Equal(t, 8980, out.Len, "MTU − 20")

	// Never more than the send queue holds: it could never be queued.
	small := newTable(t, Config{SendQueueBytes: 3000})
	e = bind(t, small, "0.0.0.0:4000")
	_, err = e.WriteTo(make([]byte, 3001), dst)
	assert.ErrorIs(t, err, syscall.EMSGSIZE)
	_, err = e.WriteTo(make([]byte, 3000), dst)
	assert.NoError(t, err)
}

func TestWriteErrors(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:4000")
	_, err := e.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EDESTADDRREQ, "not connected")
	_, err = e.WriteTo([]byte("x"), netip.MustParseAddrPort("198.18.1.1:0"))
	assert.ErrorIs(t, err, syscall.EINVAL, "port 0")
	_, err = e.WriteTo([]byte("x"), netip.AddrPort{})
	assert.ErrorIs(t, err, syscall.EINVAL, "no address")
	nothingOut(t, tbl, "nothing queued by a failed write")

	require.NoError(t, e.Connect(netip.MustParseAddrPort("[::ffff:198.18.1.1]:53")))
	_, err = e.Write([]byte("to peer"))
	require.NoError(t, err)
	_, err = e.WriteTo([]byte("elsewhere"), netip.MustParseAddrPort("198.18.1.2:53"))
	require.NoError(t, err, "a connected endpoint may still send elsewhere, as in Linux")
	out, _ := emit(t, tbl, local1)
	assert.Equal(t, netip.MustParseAddr("198.18.1.1"), out.Dst, "4-in-6 unmapped")
	out, _ = emit(t, tbl, local1)
	assert.Equal(t, netip.MustParseAddr("198.18.1.2"), out.Dst)
}

func TestSendQueueLimits(t *testing.T) {
	tbl := newTable(t, Config{SendQueueDatagrams: 3, SendQueueBytes: 1500})
	e := bind(t, tbl, "0.0.0.0:4000")
	dst := netip.MustParseAddrPort("198.18.1.1:53")
	for _, n := range []int{1000, 0, 500} {
		_, err := e.WriteTo(make([]byte, n), dst)
		require.NoError(t, err, "exactly 1500 bytes in 3 datagrams")
	}
	_, err := e.WriteTo(nil, dst)
	assert.ErrorIs(t, err, ErrWouldBlock, "a fourth datagram")
	assert.ErrorIs(t, err, syscall.EAGAIN)
	emit(t, tbl, local1)
	_, err = e.WriteTo(make([]byte, 1001), dst)
	assert.ErrorIs(t, err, ErrWouldBlock, "1501 bytes")
	_, err = e.WriteTo(make([]byte, 1000), dst)
	assert.NoError(t, err)
	assert.Equal(t, uint64(2), tbl.Stats().SndbufErrors)
}

func TestOutputRoundRobin(t *testing.T) {
	tbl := newTable(t, Config{})
	a := bind(t, tbl, "0.0.0.0:1")
	b := bind(t, tbl, "0.0.0.0:2")
	dst := netip.MustParseAddrPort("198.18.1.1:53")
	for _, w := range []struct {
		e *Endpoint
		p string
	}{{a, "a1"}, {a, "a2"}, {a, "a3"}, {b, "b1"}, {b, "b2"}} {
		_, err := w.e.WriteTo([]byte(w.p), dst)
		require.NoError(t, err)
	}
	var got []string
	buf := make([]byte, 100)
	for {
		out, ok := tbl.Output(0, buf)
		if !ok {
			break
		}
		got = append(got, string(buf[8:out.Len]))
	}
	assert.Equal(t, []string{"a1", "b1", "a2", "b2", "a3"}, got, "one datagram per endpoint per turn")
}

// TestOutputNeedsRoom: a datagram longer than the buffer stays queued,
// and Output says the room it needs; given that, it goes.
func TestOutputNeedsRoom(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:1")
	dst := netip.MustParseAddrPort("198.18.1.1:53")
	_, err := e.WriteTo(make([]byte, 3000), dst)
	require.NoError(t, err)
	out, ok := tbl.Output(0, make([]byte, 1480))
	require.True(t, ok)
	assert.Equal(t, 3008, out.Len, "the room it needs")
	assert.Equal(t, dst.Addr(), out.Dst)
	assert.Zero(t, tbl.Stats().OutDatagrams, "nothing written")
	out, u := emit(t, tbl, local1)
	assert.Equal(t, 3008, out.Len)
	assert.Len(t, u.Payload(), 3000)
	assert.Equal(t, uint64(1), tbl.Stats().OutDatagrams)
	nothingOut(t, tbl, "sent once")
}

func TestCloseStillSends(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "198.18.0.1:1")
	_, err := e.WriteTo([]byte("last words"), netip.MustParseAddrPort("198.18.1.1:53"))
	require.NoError(t, err)
	require.NoError(t, e.Close())
	e2 := bind(t, tbl, "198.18.0.1:1") // the port is free at once
	_, u := emit(t, tbl, local1)
	assert.Equal(t, "last words", string(u.Payload()), "queued before Close: still sent")
	assert.Equal(t, uint16(1), u.SrcPort())
	nothingOut(t, tbl, "sent once")
	_, err = e2.WriteTo([]byte("x"), netip.MustParseAddrPort("198.18.1.1:53"))
	assert.NoError(t, err)
}
