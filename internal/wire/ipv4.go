package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header layout (RFC 791 section 3.1).
const (
	IPv4MinLen        = 20
	ipv4TotalLenOff   = 2
	ipv4IDOffset      = 4
	ipv4FlagsOffset   = 6
	ipv4TTLOffset     = 8
	ipv4ProtoOffset   = 9
	ipv4CsumOffset    = 10
	ipv4SrcOffset     = 12
	ipv4DstOffset     = 16
	ipv4FlagDF        = 0x4000
	ipv4FlagMF        = 0x2000
	ipv4FragOffMask   = 0x1fff
	ProtoICMP         = 1
	ProtoTCP          = 6
	ProtoUDP          = 17
	ipv4DefaultTTL    = 64
	ipv4VersionIHL    = 0x45
	ipv4MaxPacketSize = 65535
)

// IPv4 is an IPv4 packet: header, options and payload.
type IPv4 []byte

// Check validates the version and the length fields: IHL of at least 5
// words and within the bytes, total length covering the header and within
// the bytes (a frame may carry padding after the packet). It does not
// verify the header checksum; see ChecksumValid.
func (p IPv4) Check() error {
	if len(p) < IPv4MinLen {
		return ErrTruncated
	}
	if p[0]>>4 != 4 {
		return ErrVersion
	}
	hl := p.HeaderLen()
	if hl < IPv4MinLen || hl > len(p) {
		return ErrHeaderLen
	}
	if tl := p.TotalLen(); tl < hl || tl > len(p) {
		return ErrLength
	}
	return nil
}

// ChecksumValid reports whether the header checksum verifies.
func (p IPv4) ChecksumValid() bool { return Checksum(p[:p.HeaderLen()], 0) == 0 }

// HeaderLen is the header length in bytes, options included.
func (p IPv4) HeaderLen() int { return int(p[0]&0x0f) * 4 }

// TOS is the type-of-service byte (DSCP and ECN).
func (p IPv4) TOS() uint8 { return p[1] }

// TotalLen is the length of the packet, header included.
func (p IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(p[ipv4TotalLenOff:])) }

// ID is the identification field.
func (p IPv4) ID() uint16 { return binary.BigEndian.Uint16(p[ipv4IDOffset:]) }

// DontFragment reports the DF flag.
func (p IPv4) DontFragment() bool {
	return binary.BigEndian.Uint16(p[ipv4FlagsOffset:])&ipv4FlagDF != 0
}

// MoreFragments reports the MF flag.
func (p IPv4) MoreFragments() bool {
	return binary.BigEndian.Uint16(p[ipv4FlagsOffset:])&ipv4FlagMF != 0
}

// FragmentOffset is the fragment's offset in bytes.
func (p IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(p[ipv4FlagsOffset:])&ipv4FragOffMask) * 8
}

// IsFragment reports whether the packet is a fragment of a larger one.
func (p IPv4) IsFragment() bool { return p.MoreFragments() || p.FragmentOffset() != 0 }

// TTL is the time to live.
func (p IPv4) TTL() uint8 { return p[ipv4TTLOffset] }

// Protocol is the payload's protocol number.
func (p IPv4) Protocol() uint8 { return p[ipv4ProtoOffset] }

// Checksum is the header checksum field.
func (p IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(p[ipv4CsumOffset:]) }

// Src is the source address.
func (p IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(p[ipv4SrcOffset:])) }

// Dst is the destination address.
func (p IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(p[ipv4DstOffset:])) }

// Options are the header's option bytes.
func (p IPv4) Options() []byte { return p[IPv4MinLen:p.HeaderLen()] }

// Payload is what follows the header, up to the total length.
func (p IPv4) Payload() []byte { return p[p.HeaderLen():p.TotalLen()] }

// SetTTL sets the TTL and updates the header checksum incrementally.
func (p IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(p[ipv4TTLOffset:])
	p[ipv4TTLOffset] = ttl
	p.setChecksum(UpdateChecksum16(p.Checksum(), old, binary.BigEndian.Uint16(p[ipv4TTLOffset:])))
}

func (p IPv4) setChecksum(c uint16) { binary.BigEndian.PutUint16(p[ipv4CsumOffset:], c) }

// SetFragment makes the header p[:HeaderLen()] that of a fragment (RFC 791
// section 3.2): total length totalLen, offset off bytes into the datagram
// (a multiple of 8), MF if more, DF clear, and a new checksum.
func (p IPv4) SetFragment(totalLen, off int, more bool) {
	binary.BigEndian.PutUint16(p[ipv4TotalLenOff:], uint16(totalLen))
	frag := uint16(off/8) & ipv4FragOffMask
	if more {
		frag |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(p[ipv4FlagsOffset:], frag)
	p.setChecksum(0)
	p.setChecksum(Checksum(p[:p.HeaderLen()], 0))
}

// IPv4Fields describes a 20-byte IPv4 header to encode (no options).
type IPv4Fields struct {
	TOS          uint8
	TotalLen     int // header and payload
	ID           uint16
	DontFragment bool
	TTL          uint8 // 0 means 64
	Protocol     uint8
	Src, Dst     netip.Addr
}

// Encode writes the header, checksum included, into b[:20] and returns 20.
func (f IPv4Fields) Encode(b []byte) int {
	h := IPv4(b[:IPv4MinLen])
	h[0] = ipv4VersionIHL
	h[1] = f.TOS
	binary.BigEndian.PutUint16(h[ipv4TotalLenOff:], uint16(f.TotalLen))
	binary.BigEndian.PutUint16(h[ipv4IDOffset:], f.ID)
	var flags uint16
	if f.DontFragment {
		flags = ipv4FlagDF
	}
	binary.BigEndian.PutUint16(h[ipv4FlagsOffset:], flags)
	h[ipv4TTLOffset] = f.TTL
	if f.TTL == 0 {
		h[ipv4TTLOffset] = ipv4DefaultTTL
	}
	h[ipv4ProtoOffset] = f.Protocol
	src, dst := f.Src.As4(), f.Dst.As4()
	copy(h[ipv4SrcOffset:], src[:])
	copy(h[ipv4DstOffset:], dst[:])
	h.setChecksum(0)
	h.setChecksum(Checksum(h, 0))
	return IPv4MinLen
}
