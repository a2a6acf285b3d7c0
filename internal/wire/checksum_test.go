package wire

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// naiveChecksum is RFC 1071 word by word, the reference for the fast one.
func naiveChecksum(b []byte, sum uint32) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 2048+8)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, fill := range []byte{0x00, 0xff} { // all-zero and all-ones words stress the carries
		ones := make([]byte, 1600)
		for i := range ones {
			ones[i] = fill
		}
		for n := range len(ones) {
			require.Equal(t, naiveChecksum(ones[:n], 0), Checksum(ones[:n], 0), "fill %#x length %d", fill, n)
		}
	}
	for n := 0; n <= 2048; n++ {
		for _, off := range []int{0, 1, 3, 7} { // alignment must not matter
			b := buf[off : off+n]
			initial := rng.Uint32() & 0x3ffff
			require.Equal(t, naiveChecksum(b, initial), Checksum(b, initial), "length %d offset %d initial %#x", n, off, initial)
		}
	}
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: these words sum to 0xddf2.
	assert.Equal(t, ^uint16(0xddf2), Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0))
}

func TestSumChains(t *testing.T) {
	b := make([]byte, 999)
	for i := range b {
		b[i] = byte(i * 13)
	}
	whole := Checksum(b, 0)
	// Splitting at an even offset and chaining the partial sums gives the
	// same checksum.
	assert.Equal(t, whole, ^uint16(Fold(Sum(b[500:], Sum(b[:500], 0)))))
}

func TestUpdateChecksum16MatchesRecompute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		h := make([]byte, 20)
		for i := range h {
			h[i] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint16(h[10:], 0)
		binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
		w := 2 * rng.IntN(10)
		if w == 10 {
			continue // the checksum field itself
		}
		old := binary.BigEndian.Uint16(h[w:])
		nw := uint16(rng.Uint32())
		binary.BigEndian.PutUint16(h[w:], nw)
		got := UpdateChecksum16(binary.BigEndian.Uint16(h[10:]), old, nw)
		binary.BigEndian.PutUint16(h[10:], got)
		require.Zero(t, Checksum(h, 0), "header verifies after the incremental update")
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ph := []byte{198, 18, 0, 1, 198, 18, 0, 2, 0, 17, 0, 100}
	assert.Equal(t, naiveChecksum(ph, 0), ^uint16(Fold(PseudoHeaderSum(src, dst, 17, 100))))
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500, 9000} {
		buf := make([]byte, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var s uint16
			for b.Loop() {
				s += Checksum(buf, 0)
			}
			_ = s
		})
	}
}

func TestCopySum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	src, dst := make([]byte, 3000), make([]byte, 3000)
	for n := range 300 {
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		l := n*10 + rng.IntN(10)
		initial := rng.Uint32() >> 8
		clear(dst)
		got := CopySum(dst, src[:l], initial)
		require.Equal(t, Fold(Sum(src[:l], initial)), Fold(got), "length %d", l)
		require.Equal(t, src[:l], dst[:l])
		require.Zero(t, dst[l], "nothing past the copy")
	}
}

// BenchmarkCopySum compares a copy and checksum in one pass against a
// copy and then a checksum of the copy.
func BenchmarkCopySum(b *testing.B) {
	src, dst := make([]byte, 1460), make([]byte, 1460)
	b.Run("fused", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var s uint32
		for b.Loop() {
			s += CopySum(dst, src, 0)
		}
		_ = s
	})
	b.Run("copy-then-sum", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		var s uint32
		for b.Loop() {
			copy(dst, src)
			s += Sum(dst, 0)
		}
		_ = s
	})
}
