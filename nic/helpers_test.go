package nic

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// vclock is a virtual clock: tests move it by hand, so nothing waits on wall
// time.
type vclock struct{ t time.Duration }

// Now is the monotonic reading Faulty wants.
func (c *vclock) Now() time.Duration { return c.t }

// Time is the wall reading PcapTap wants, at a fixed epoch.
func (c *vclock) Time() time.Time { return time.Unix(1_700_000_000, 0).Add(c.t) }

var (
	testIPA = [4]byte{198, 18, 0, 1}
	testIPB = [4]byte{198, 18, 0, 2}
)

// udpFrame builds an Ethernet II / IPv4 / UDP frame from testIPA to testIPB,
// with a valid IPv4 header checksum and UDP checksum.
func udpFrame(dst, src net.HardwareAddr, sport, dport uint16, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	f := make([]byte, EthernetHeaderLen+ipLen+udpLen+len(payload))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], 0x0800) // IPv4

	ip := f[EthernetHeaderLen:]
	ip[0] = 0x45 // version 4, IHL 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen+udpLen+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], 1)      // identification
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8] = 64                                 // TTL
	ip[9] = 17                                 // UDP
	copy(ip[12:16], testIPA[:])
	copy(ip[16:20], testIPB[:])
	binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip[:ipLen], 0))

	u := ip[ipLen:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	// RFC 768: the checksum covers a pseudo-header of both addresses, the
	// protocol and the UDP length; 0 means "none", so a 0 result is sent as
	// all ones.
	var pseudo uint32
	for _, w := range [][]byte{ip[12:14], ip[14:16], ip[16:18], ip[18:20]} {
		pseudo += uint32(binary.BigEndian.Uint16(w))
	}
	pseudo += 17 + uint32(udpLen+len(payload))
	sum := inetChecksum(u, pseudo)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	return f
}

// inetChecksum is the RFC 1071 Internet checksum of b, starting from the
// partial sum initial.
func inetChecksum(b []byte, initial uint32) uint16 {
	sum := initial
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
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
