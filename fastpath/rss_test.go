package fastpath

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestToeplitzVectors checks the hash against the IPv4 TCP verification
// vectors of Microsoft's RSS specification ("Verifying the RSS Hash
// Calculation"), computed with defaultRSSKey.
func TestToeplitzVectors(t *testing.T) {
	for _, v := range []struct {
		src, dst string
		want     uint32
	}{
		{"66.9.149.187:2794", "161.142.100.80:1766", 0x51ccc178},
		{"199.92.111.2:14230", "65.69.140.83:4739", 0xc626b0ea},
		{"24.19.198.95:12898", "12.22.207.184:38024", 0x5c2b394a},
		{"38.27.205.30:48228", "209.142.163.6:2217", 0xafc7327f},
		{"153.39.163.191:44251", "202.188.127.2:1303", 0x10e828a2},
	} {
		src, dst := netip.MustParseAddrPort(v.src), netip.MustParseAddrPort(v.dst)
		var in [12]byte
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(in[0:], s[:])
		copy(in[4:], d[:])
		in[8], in[9] = byte(src.Port()>>8), byte(src.Port())
		in[10], in[11] = byte(dst.Port()>>8), byte(dst.Port())
		assert.Equal(t, v.want, toeplitz(defaultRSSKey, in[:]), "%s -> %s", v.src, v.dst)
	}
}

func TestQueueOfUsesIndirection(t *testing.T) {
	src, dst := netip.MustParseAddrPort("66.9.149.187:2794"), netip.MustParseAddrPort("161.142.100.80:1766")
	r := RSS{Indir: make([]uint32, 128)}
	for i := range r.Indir {
		r.Indir[i] = uint32(i % 3)
	}
	assert.Equal(t, int(0x51ccc178%128%3), r.queueOf(src, dst, 3))
	assert.Equal(t, int(0x51ccc178%4), (&RSS{}).queueOf(src, dst, 4))
}

// TestRSSTable: the table-driven hash equals the bitwise Toeplitz hash,
// for the default key and for another one.
func TestRSSTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	otherKey := make([]byte, 40)
	for i := range otherKey {
		otherKey[i] = byte(rng.Uint32())
	}
	for _, key := range [][]byte{nil, otherKey} {
		r := &RSS{Key: key}
		want := key
		if want == nil {
			want = defaultRSSKey
		}
		for range 1000 {
			var in [rssInput]byte
			for i := range in {
				in[i] = byte(rng.Uint32())
			}
			assert.Equal(t, toeplitz(want, in[:]), r.hash(&in))
		}
	}
}

func BenchmarkQueueOf(b *testing.B) {
	src, dst := netip.MustParseAddrPort("198.18.0.3:40000"), netip.MustParseAddrPort("198.18.0.2:80")
	r := &RSS{}
	n := 0
	for b.Loop() {
		n += r.queueOf(src, dst, 4)
	}
	_ = n
}
