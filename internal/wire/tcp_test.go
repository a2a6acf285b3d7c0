package wire

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tcpSegment(f TCPFields, payload string) TCP {
	b := make([]byte, f.HeaderLen()+len(payload))
	copy(b[f.HeaderLen():], payload)
	n := f.Encode(b, len(payload), addrA, addrB)
	return TCP(b[:n+len(payload)])
}

func TestTCPRoundTrip(t *testing.T) {
	opts := TCPOptions{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 12345, TSEcr: 678}
	f := TCPFields{SrcPort: 40000, DstPort: 80, Seq: 0xfffffff0, Ack: 7, Flags: TCPFlagSYN | TCPFlagACK, Window: 65535, Options: opts}
	s := tcpSegment(f, "data")
	require.NoError(t, s.Check())
	assert.True(t, s.ChecksumValid(addrA, addrB))
	assert.False(t, s.ChecksumValid(addrA, netip.MustParseAddr("198.18.0.3")), "the pseudo-header covers the addresses")
	assert.EqualValues(t, 40000, s.SrcPort())
	assert.EqualValues(t, 80, s.DstPort())
	assert.EqualValues(t, 0xfffffff0, s.Seq())
	assert.EqualValues(t, 7, s.Ack())
	assert.EqualValues(t, TCPFlagSYN|TCPFlagACK, s.Flags())
	assert.EqualValues(t, 65535, s.Window())
	assert.Equal(t, 20+20, s.HeaderLen(), "SACK-permitted takes the NOPs before the timestamps")
	assert.Zero(t, s.HeaderLen()%4)
	assert.Equal(t, "data", string(s.Payload()))
	got, err := ParseTCPOptions(s.Options())
	require.NoError(t, err)
	assert.Equal(t, opts, got)
}

// The options of a SYN are laid out byte for byte as Linux lays them out
// (tcp_options_write), so a capture reads the same for both stacks.
func TestTCPOptionsLayoutAsLinux(t *testing.T) {
	for _, c := range []struct {
		name string
		o    TCPOptions
		want []byte
	}{
		{"mss,sackOK,TS,wscale", TCPOptions{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 1, TSEcr: 2},
			[]byte{2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7}},
		{"mss,nop,nop,TS,wscale", TCPOptions{MSS: 1460, WindowScale: 7, HasTimestamps: true, TSVal: 1, TSEcr: 2},
			[]byte{2, 4, 5, 180, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7}},
		{"mss,nop,nop,sackOK,wscale", TCPOptions{MSS: 1460, WindowScale: 7, SACKPermitted: true},
			[]byte{2, 4, 5, 180, 1, 1, 4, 2, 1, 3, 3, 7}},
		{"TS,sack", TCPOptions{WindowScale: -1, HasTimestamps: true, TSVal: 1, TSEcr: 2, NSACK: 1, SACK: [MaxSACKBlocks]SACKBlock{{3, 4}}},
			[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4}},
	} {
		s := tcpSegment(TCPFields{Flags: TCPFlagSYN, Options: c.o}, "")
		assert.Equal(t, c.want, []byte(s.Options()), c.name)
		got, err := ParseTCPOptions(s.Options())
		require.NoError(t, err, c.name)
		assert.Equal(t, c.o, got, c.name)
	}
}

func TestTCPOptionsNeverOverflowTheHeader(t *testing.T) {
	o := TCPOptions{WindowScale: -1, HasTimestamps: true, NSACK: 4}
	for i := range o.SACK {
		o.SACK[i] = SACKBlock{uint32(i * 100), uint32(i*100 + 50)}
	}
	assert.Equal(t, 12+4+3*8, o.Len(), "beside timestamps only 3 blocks fit (RFC 2018)")
	s := tcpSegment(TCPFields{Flags: TCPFlagACK, Options: o}, "")
	require.NoError(t, s.Check())
	assert.LessOrEqual(t, s.HeaderLen(), TCPMaxHeaderLen)
	got, err := ParseTCPOptions(s.Options())
	require.NoError(t, err)
	assert.Equal(t, 3, got.NSACK)
	assert.Equal(t, o.SACK[:3], got.SACK[:3], "the first blocks, the most recent, are kept")

	o.HasTimestamps = false
	assert.Equal(t, 4+4*8, o.Len(), "without timestamps all 4 fit")
}

func TestParseTCPOptionsRejectsMalformed(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
	}{
		{"kind without length", []byte{tcpOptMSS}},
		{"length 0 would loop", []byte{30, 0, 1, 1}},
		{"length 1", []byte{30, 1}},
		{"length past the options", []byte{tcpOptMSS, 8, 0, 0}},
		{"MSS of 3 bytes", []byte{tcpOptMSS, 5, 0, 0, 0}},
		{"window scale of 2 bytes", []byte{tcpOptWindowScale, 4, 0, 0}},
		{"SACK permitted with a body", []byte{tcpOptSACKPermitted, 3, 0}},
		{"timestamps of 4 bytes", []byte{tcpOptTimestamps, 6, 0, 0, 0, 0}},
		{"SACK of 7 bytes", []byte{tcpOptSACK, 9, 0, 0, 0, 0, 0, 0, 0}},
		{"SACK of 5 blocks", append([]byte{tcpOptSACK, 42}, make([]byte, 40)...)},
	} {
		_, err := ParseTCPOptions(c.opts)
		assert.ErrorIs(t, err, ErrOption, c.name)
	}
}

func TestParseTCPOptionsSkipsAndStops(t *testing.T) {
	o, err := ParseTCPOptions([]byte{
		tcpOptNOP, 30, 4, 0xaa, 0xbb, // an unknown option is skipped
		tcpOptWindowScale, 3, 20, // a shift above 14 is used as 14
		tcpOptEOL, tcpOptMSS, 99, // nothing after EOL is read
	})
	require.NoError(t, err)
	assert.EqualValues(t, MaxWindowScale, o.WindowScale)
	assert.Zero(t, o.MSS)
	o, err = ParseTCPOptions(nil)
	require.NoError(t, err)
	assert.EqualValues(t, -1, o.WindowScale, "absent")
}

func TestTCPCheckRejects(t *testing.T) {
	s := tcpSegment(TCPFields{Flags: TCPFlagACK, Options: TCPOptions{WindowScale: -1}}, "x")
	assert.ErrorIs(t, s[:19].Check(), ErrTruncated)
	bad := append(TCP(nil), s...)
	bad[tcpDataOffOffset] = 4 << 4
	assert.ErrorIs(t, bad.Check(), ErrHeaderLen, "data offset below 5 words")
	bad[tcpDataOffOffset] = 15 << 4
	assert.ErrorIs(t, bad.Check(), ErrHeaderLen, "data offset past the segment")
}

// FuzzTCP parses arbitrary segments and options: no panic, no endless
// loop, and options that parse re-encode to options that parse the same.
func FuzzTCP(f *testing.F) {
	f.Add([]byte(tcpSegment(TCPFields{Flags: TCPFlagSYN, Options: TCPOptions{MSS: 1460, WindowScale: 7, SACKPermitted: true, HasTimestamps: true, TSVal: 1}}, "")))
	f.Add([]byte(tcpSegment(TCPFields{Flags: TCPFlagACK, Options: TCPOptions{WindowScale: -1, NSACK: 2}}, "payload")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := TCP(b)
		if s.Check() == nil {
			_, _, _, _, _ = s.SrcPort(), s.Seq(), s.Ack(), s.Flags(), s.ChecksumValid(addrA, addrB)
			_ = s.Payload()
			b = s.Options()
		}
		o, err := ParseTCPOptions(b)
		if err != nil {
			return
		}
		if o.Len() > tcpMaxOptions {
			t.Fatalf("options of %d bytes", o.Len())
		}
		again := tcpSegment(TCPFields{Options: o}, "")
		o2, err := ParseTCPOptions(again.Options())
		if err != nil {
			t.Fatalf("re-encoded options do not parse: %v", err)
		}
		o.NSACK = o.sackBlocks()
		clear(o.SACK[o.NSACK:])
		if o != o2 {
			t.Fatalf("round trip changed the options:\n%+v\n%+v", o, o2)
		}
	})
}
