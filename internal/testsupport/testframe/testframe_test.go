package testframe

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBuildHasValidChecksums(t *testing.T) {
	f := UDP{
		SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
		Src: netip.MustParseAddrPort("198.18.0.2:1000"), Dst: netip.MustParseAddrPort("198.18.0.3:7"),
		Payload: []byte("hello"),
	}.Build()
	assert.Len(t, f, UDPFirst+5)
	assert.Zero(t, Checksum(f[EthLen:EthLen+IPv4Len], 0), "IPv4 header checksum verifies to zero")
	assert.True(t, UDPChecksumOK(f))
	f[len(f)-1] ^= 1
	assert.False(t, UDPChecksumOK(f), "a flipped payload bit fails the checksum")
	assert.False(t, UDPChecksumOK(f[:20]), "truncated")
}

func TestChecksumKnownValue(t *testing.T) {
	// RFC 1071 section 3's example: the sum of these words is 0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	assert.Equal(t, ^uint16(0xddf2), Checksum(b, 0))
	assert.Equal(t, ^uint16(0xddf2+0x0100), Checksum(append(b, 0x01), 0), "an odd byte is padded with zero")
}
