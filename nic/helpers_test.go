package nic

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/testframe"
)

// vclock is a virtual clock: tests move it by hand, so nothing waits on wall
// time.
type vclock struct{ t time.Duration }

// Now is the monotonic reading Faulty wants.
func (c *vclock) Now() time.Duration { return c.t }

// Time is the wall reading PcapTap wants, at a fixed epoch.
func (c *vclock) Time() time.Time { return time.Unix(1_700_000_000, 0).Add(c.t) }

// udpFrame builds an Ethernet II / IPv4 / UDP frame between two lab
// addresses, with valid checksums.
func udpFrame(dst, src net.HardwareAddr, sport, dport uint16, payload []byte) []byte {
	return testframe.UDP{
		SrcMAC: src, DstMAC: dst,
		Src:     netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), sport),
		Dst:     netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), dport),
		Payload: payload,
	}.Build()
}

// send copies each frame into a transmit buffer of l and transmits them as
// one batch.
func send(t testing.TB, l Link, frames ...[]byte) {
	t.Helper()
	fs := make([]Frame, len(frames))
	if n := l.Alloc(fs); n != len(fs) {
		t.Fatalf("Alloc: got %d buffers, want %d", n, len(fs))
	}
	for i, b := range frames {
		fs[i].Data = fs[i].Data[:copy(fs[i].Data, b)]
	}
	if n, err := l.Transmit(fs); n != len(fs) || err != nil {
		t.Fatalf("Transmit: %d, %v; want %d, nil", n, err, len(fs))
	}
}

// drain receives every frame l has ready, returns copies of their bytes and
// releases them.
func drain(t testing.TB, l Link) [][]byte {
	t.Helper()
	var out [][]byte
	fs := make([]Frame, 16)
	for {
		n, err := l.Receive(fs)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if n == 0 {
			return out
		}
		for _, f := range fs[:n] {
			out = append(out, append([]byte(nil), f.Data...))
		}
		l.Release(fs[:n])
	}
}

// seqFrame is a minimal frame carrying seq in bytes 14..21 and a filler
// derived from it, so a receiver can tell frames apart and check content.
func seqFrame(seq uint64, size int) []byte {
	f := make([]byte, size)
	fillSeqFrame(f, seq)
	return f
}

// fillSeqFrame writes seqFrame's content into f in place, without
// allocating.
func fillSeqFrame(f []byte, seq uint64) {
	copy(f, []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5}) // local experimental ethertype
	binary.BigEndian.PutUint64(f[EthernetHeaderLen:], seq)
	for i := EthernetHeaderLen + 8; i < len(f); i++ {
		f[i] = byte(seq) + byte(i)
	}
}

// frameSeq reads the sequence number seqFrame wrote.
func frameSeq(f []byte) uint64 { return binary.BigEndian.Uint64(f[EthernetHeaderLen:]) }

// stingyLink accepts at most one frame per Transmit, like a link whose
// transmit ring is nearly full, and counts what it is given back.
type stingyLink struct {
	Link
	released int
}

func (l *stingyLink) Transmit(fs []Frame) (int, error) { return l.Link.Transmit(fs[:min(1, len(fs))]) }

func (l *stingyLink) Release(fs []Frame) {
	l.released += len(fs)
	l.Link.Release(fs)
}
