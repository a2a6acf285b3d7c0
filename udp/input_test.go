package udp

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	from = netip.MustParseAddrPort("198.18.1.1:5000")
	to   = netip.MustParseAddrPort("198.18.0.1:7")
)

func TestInputChecksum(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:7")

	good := segment(from, to, []byte("hello"))
	assert.Equal(t, Delivered, tbl.Input(0, from.Addr(), to.Addr(), good))

	bad := segment(from, to, []byte("hello"))
	bad[len(bad)-1] ^= 0x40
	assert.Equal(t, Dropped, tbl.Input(0, from.Addr(), to.Addr(), bad))

	wrongDst := segment(from, to, []byte("hello"))
	assert.Equal(t, Dropped, tbl.Input(0, from.Addr(), local2, wrongDst), "the pseudo-header covers the addresses")

	none := segment(from, to, []byte("no sum"))
	binary.BigEndian.PutUint16(none[6:], 0)
	none[len(none)-1] ^= 0x40 // not verified, so not noticed
	assert.Equal(t, Delivered, tbl.Input(0, from.Addr(), to.Addr(), none), "zero: no checksum (RFC 768)")

	s := tbl.Stats()
	assert.Equal(t, uint64(2), s.InCsumErrors)
	assert.Equal(t, uint64(2), s.InErrors, "checksum errors are input errors too")
	assert.Equal(t, uint64(2), s.InDatagrams)
	got, src := read(t, e)
	assert.Equal(t, "hello", got)
	assert.Equal(t, from, src)
	got, _ = read(t, e)
	want := []byte("no sum")
	want[5] ^= 0x40
	assert.Equal(t, string(want), got, "delivered as it came")
}

func TestInputChecksumAllOnes(t *testing.T) {
	// Find a payload whose checksum computes to zero: it is sent as
	// 0xffff (RFC 768), and 0xffff verifies.
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:7")
	for i := range 1 << 16 {
		p := binary.BigEndian.AppendUint16(nil, uint16(i))
		seg := segment(from, to, p)
		if binary.BigEndian.Uint16(seg[6:]) == 0xffff {
			assert.Equal(t, Delivered, tbl.Input(0, from.Addr(), to.Addr(), seg))
			got, _ := read(t, e)
			assert.Equal(t, string(p), got)
			return
		}
	}
	t.Fatal("no payload sums to zero")
}

func TestInputMalformed(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:7")
	seg := segment(from, to, []byte("abcdef"))
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short header":      seg[:7],
		"length beyond":     seg[:len(seg)-1],
		"length below 8":    append(append([]byte{}, seg[:4]...), 0, 7, 0, 0),
		"length zero, data": append(append([]byte{}, seg[:4]...), 0, 0, 0, 0, 1),
	} {
		assert.Equal(t, Dropped, tbl.Input(0, from.Addr(), to.Addr(), b), name)
	}
	assert.Equal(t, uint64(5), tbl.Stats().InErrors)
	assert.Zero(t, tbl.Stats().InCsumErrors)

	// IPv4 payload beyond the length field is not part of the datagram.
	padded := append(append([]byte{}, seg...), 0xee, 0xee)
	assert.Equal(t, Delivered, tbl.Input(0, from.Addr(), to.Addr(), padded))
	got, _ := read(t, e)
	assert.Equal(t, "abcdef", got)
}

func TestInputNoPort(t *testing.T) {
	tbl := newTable(t, Config{})
	bind(t, tbl, "198.18.0.2:7")
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:1", "198.18.0.1:8", nil), "no endpoint on the port")
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", nil), "bound to another address")
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:1", "198.18.0.1:0", nil), "port 0")
	bad := segment(from, netip.MustParseAddrPort("198.18.0.1:8"), nil)
	bad[6] ^= 1
	assert.Equal(t, Dropped, tbl.Input(0, from.Addr(), local1, bad), "checksum before demux: no ICMP for a corrupt datagram")
	assert.Equal(t, uint64(3), tbl.Stats().NoPorts)
	assert.Equal(t, "no port", NoPort.String())
}

func TestReceiveQueueLimits(t *testing.T) {
	t.Run("datagrams", func(t *testing.T) {
		tbl := newTable(t, Config{RecvQueueDatagrams: 3, RecvQueueBytes: 1000})
		e := bind(t, tbl, "0.0.0.0:7")
		for range 3 {
			assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", nil), "empty datagrams count too")
		}
		assert.Equal(t, Dropped, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", nil), "the fourth")
		read(t, e)
		assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", nil), "room again after a read")
		s := tbl.Stats()
		assert.Equal(t, uint64(1), s.RcvbufErrors)
		assert.Equal(t, uint64(1), s.InErrors)
		assert.Equal(t, uint64(4), s.InDatagrams)
	})
	t.Run("bytes", func(t *testing.T) {
		tbl := newTable(t, Config{RecvQueueDatagrams: 100, RecvQueueBytes: 100})
		e := bind(t, tbl, "0.0.0.0:7")
		assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", make([]byte, 60)))
		assert.Equal(t, Dropped, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", make([]byte, 41)), "101 bytes")
		assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", make([]byte, 40)), "exactly 100 bytes")
		assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", nil), "no bytes still fit")
		assert.Equal(t, Dropped, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", []byte{1}))
		assert.Equal(t, uint64(2), tbl.Stats().RcvbufErrors)
		assert.Equal(t, 100, e.rcv.bytes())
		assert.Equal(t, 3, e.rcv.datagrams())
	})
	t.Run("larger than the queue", func(t *testing.T) {
		tbl := newTable(t, Config{RecvQueueBytes: 10})
		bind(t, tbl, "0.0.0.0:7")
		assert.Equal(t, Dropped, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", make([]byte, 11)))
		assert.Equal(t, uint64(1), tbl.Stats().RcvbufErrors)
	})
}

func TestReadFromTruncates(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "0.0.0.0:7")
	deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", []byte("0123456789"))
	deliver(tbl, "198.18.1.1:2", "198.18.0.1:7", []byte("next"))
	buf := make([]byte, 4)
	n, src, err := e.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(buf[:n]), "the rest is discarded, as a UDP socket does")
	assert.Equal(t, uint16(1), src.Port())
	got, _ := read(t, e)
	assert.Equal(t, "next", got)
	_, _, err = e.ReadFrom(buf)
	assert.ErrorIs(t, err, ErrWouldBlock)
}

// TestInputManyInOrder sends 10,000 datagrams of every size from 1 to 1472
// bytes through a small receive queue, reading as it goes so that the byte
// ring wraps at every offset, and checks each byte and the order.
func TestInputManyInOrder(t *testing.T) {
	tbl := newTable(t, Config{RecvQueueBytes: 4000, RecvQueueDatagrams: 7})
	e := bind(t, tbl, "198.18.0.1:7")
	rng := rand.New(rand.NewPCG(1, 2))
	var sent [][]byte
	buf := make([]byte, 2000)
	next := 0
	for i := range 10000 {
		p := make([]byte, i%1472+1)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		for !e.rcv.fits(len(p)) {
			n, src, err := e.ReadFrom(buf)
			require.NoError(t, err)
			require.Equal(t, from, src)
			require.Equal(t, sent[next], buf[:n], "datagram %d", next)
			next++
		}
		sent = append(sent, p)
		require.Equal(t, Delivered, tbl.Input(0, from.Addr(), to.Addr(), segment(from, to, p)))
	}
	for ; next < len(sent); next++ {
		n, _, err := e.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, sent[next], buf[:n], "datagram %d", next)
	}
	assert.Equal(t, uint64(10000), tbl.Stats().InDatagrams)
	assert.Zero(t, tbl.Stats().RcvbufErrors)
}
