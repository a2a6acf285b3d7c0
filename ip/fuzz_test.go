package ip

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// fuzzLayer is a Layer with small limits, so that fuzzing reaches
// eviction, and a secondary address, so that it reaches their paths.
func fuzzLayer(t testing.TB) *Layer {
	return newLayer(t, func(c *Config) {
		c.Secondary = []netip.Addr{second}
		c.ReasmMemory = minReasmMemory
		c.ReasmDatagrams = 4
		c.PMTUEntries = 4
		c.ICMPErrorBurst = 3
	})
}

// record appends one FuzzInput record: flags, time step in units of
// 100 ms, length and packet.
func record(b []byte, flags, step byte, pkt []byte) []byte {
	b = append(b, flags, step, byte(len(pkt)>>8), byte(len(pkt)))
	return append(b, pkt...)
}

// FuzzInput feeds arbitrary packets at arbitrary times through Input,
// ICMPInput, Unreachable and Tick: nothing panics, the counters stay
// consistent and reassembly memory stays within its cap. Each record is
// flags, a time step, a 16-bit length and the packet; flag bit 0 fixes
// the IPv4 header checksum and bit 1 the ICMP checksum, so that the fuzzer
// gets past them.
func FuzzInput(f *testing.F) {
	l := fuzzLayer(f)
	echo := echoRequest(ours, 1, 2, []byte("ping"), 0)
	quoteErr := icmpError(wire.ICMPDestUnreachable, wire.ICMPFragNeeded, 1200, sent(f, l, far, 1500))
	fs := split(5, pattern(3000, 0), 1480)
	f.Add(record(nil, 0, 0, udpTo(7, 10)))
	f.Add(record(record(nil, 0, 1, echo), 3, 0, echo[:30]))
	f.Add(record(nil, 0, 0, quoteErr))
	f.Add(record(record(record(nil, 0, 0, fs[1]), 0, 0, fs[0]), 0, 200, fs[2]))
	f.Add(record(record(nil, 0, 0, fs[0]), 0, 255, fs[2]))
	f.Add(record(nil, 1, 0, []byte{0x46, 0, 0, 24, 0, 0, 0x20, 0, 64, 1, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1, 1, 1, 1, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := fuzzLayer(t)
		out := make([]byte, 1500)
		var now time.Duration
		for len(data) >= 4 {
			flags, step := data[0], data[1]
			n := min(int(binary.BigEndian.Uint16(data[2:])), len(data)-4)
			pkt := data[4 : 4+n]
			data = data[4+n:]
			now += time.Duration(step) * 100 * time.Millisecond
			fixChecksums(pkt, flags)
			for dl, ok := l.Deadline(); ok && dl <= now; dl, ok = l.Deadline() {
				for tick(l, now, out) > 0 {
				}
			}
			d, ok := l.Input(now, pkt)
			if !ok {
				continue
			}
			switch d.Proto {
			case wire.ProtoICMP:
				if n, ev := l.ICMPInput(now, d, out); n > 0 {
					h := wire.IPv4(out[:n])
					require.NoError(t, h.Check())
					require.True(t, h.ChecksumValid())
					require.True(t, wire.ICMP(h.Payload()).ChecksumValid())
				} else if ev.Kind == EventError {
					require.GreaterOrEqual(t, len(ev.Transport), 8)
				}
			case wire.ProtoUDP:
				l.Unreachable(now, d, wire.ICMPPortUnreachable, out)
			default:
				l.Unreachable(now, d, wire.ICMPProtoUnreachable, out)
			}
		}
		checkInvariants(t, l)
	})
}

// fixChecksums sets the checksums flags ask for, where the lengths allow.
func fixChecksums(pkt []byte, flags byte) {
	if len(pkt) < 20 {
		return
	}
	hl := int(pkt[0]&0xf) * 4
	if hl < 20 || hl > len(pkt) {
		return
	}
	if flags&1 != 0 {
		fixSum(pkt)
	}
	if tl := int(binary.BigEndian.Uint16(pkt[2:])); flags&2 != 0 && tl >= hl+8 && tl <= len(pkt) {
		m := pkt[hl:tl]
		binary.BigEndian.PutUint16(m[2:], 0)
		binary.BigEndian.PutUint16(m[2:], wire.Checksum(m, 0))
	}
}

// FuzzReassembly feeds fragments of four datagrams whose bytes follow a
// fixed pattern, at arbitrary offsets, lengths and times. Whatever
// arrives, a datagram that completes holds exactly the pattern up to its
// last fragment's end, memory stays within its cap, and the counters stay
// consistent. Each record is 6 bytes: datagram and flags (bit 2: MF), time
// step, offset in 8-byte units (16 bits), length (16 bits).
func FuzzReassembly(f *testing.F) {
	rec := func(b []byte, id byte, mf bool, step byte, off8, n uint16) []byte {
		if mf {
			id |= 4
		}
		return append(b, id, step, byte(off8>>8), byte(off8), byte(n>>8), byte(n))
	}
	f.Add(rec(rec(nil, 0, true, 0, 0, 1480), 0, false, 0, 185, 100))
	f.Add(rec(rec(rec(nil, 1, false, 0, 10, 5), 1, true, 0, 0, 80), 1, true, 0, 0, 80))
	f.Add(rec(rec(nil, 2, true, 0, 0, 24), 2, false, 0, 2, 4))
	f.Add(rec(rec(nil, 3, true, 0, 0, 8), 3, false, 255, 1, 8))
	f.Add(rec(nil, 0, false, 0, 8189, 100))
	buf := make([]byte, maxPacket) // the pattern, read only
	for i := range buf {
		buf[i] = byte(i*13 + i>>8)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := fuzzLayer(t)
		out := make([]byte, 1500)
		var now time.Duration
		for ; len(data) >= 6; data = data[6:] {
			id := uint16(data[0] & 3)
			mf := data[0]&4 != 0
			now += time.Duration(data[1]) * time.Second
			off := 8 * int(binary.BigEndian.Uint16(data[2:])&0x1fff)
			n := min(int(binary.BigEndian.Uint16(data[4:])), maxPacket-20, max(0, maxPacket-off-20))
			if n > 1500 {
				n = 1480 // keep packets to one MTU so that most records are fragments
			}
			payload := make([]byte, n)
			for i := range payload {
				payload[i] = byte(id) ^ buf[off+i]
			}
			for tick(l, now, out) > 0 {
			}
			d, ok := l.Input(now, frag(id, off, mf, payload))
			if ok {
				require.Equal(t, d.Header.TotalLen()-20, len(d.Payload))
				for i, c := range d.Payload {
					if c != byte(id)^buf[i] {
						t.Fatalf("byte %d of datagram %d is %#x, want %#x", i, id, c, byte(id)^buf[i])
					}
				}
			}
		}
		checkInvariants(t, l)
	})
}
