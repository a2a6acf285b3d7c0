package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDP header layout (RFC 768).
const (
	UDPHeaderLen      = 8
	udpDstPortOffset  = 2
	udpLengthOffset   = 4
	udpChecksumOffset = 6
)

// UDP is a UDP datagram: header and payload.
type UDP []byte

// Check validates the header and that the length field covers the header
// and stays within the bytes (an IPv4 payload longer than it is padding).
func (u UDP) Check() error {
	if len(u) < UDPHeaderLen {
		return ErrTruncated
	}
	if l := u.Length(); l < UDPHeaderLen || l > len(u) {
		return ErrLength
	}
	return nil
}

// SrcPort is the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u) }

// DstPort is the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPortOffset:]) }

// Length is the length field: header and payload.
func (u UDP) Length() int { return int(binary.BigEndian.Uint16(u[udpLengthOffset:])) }

// Checksum is the checksum field; 0 means the sender computed none.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksumOffset:]) }

// Payload is the data, up to the length field.
func (u UDP) Payload() []byte { return u[UDPHeaderLen:u.Length()] }

// ChecksumValid reports whether the checksum over the pseudo-header,
// header and payload verifies. A zero checksum field ("none", RFC 768) is
// the caller's decision: this reports the arithmetic only.
func (u UDP) ChecksumValid(src, dst netip.Addr) bool {
	n := u.Length()
	return Checksum(u[:n], PseudoHeaderSum(src, dst, ProtoUDP, n)) == 0
}

// UDPFields describes a UDP header to encode.
type UDPFields struct {
	SrcPort, DstPort uint16
}

// Encode writes the header over b, whose bytes after the header hold
// payloadLen bytes of payload already, with the checksum over the
// pseudo-header of src and dst, and returns 8. A computed zero is sent as
// 0xffff, since zero means "no checksum" (RFC 768).
func (f UDPFields) Encode(b []byte, payloadLen int, src, dst netip.Addr) int {
	n := UDPHeaderLen + payloadLen
	u := b[:n]
	binary.BigEndian.PutUint16(u, f.SrcPort)
	binary.BigEndian.PutUint16(u[udpDstPortOffset:], f.DstPort)
	binary.BigEndian.PutUint16(u[udpLengthOffset:], uint16(n))
	binary.BigEndian.PutUint16(u[udpChecksumOffset:], 0)
	c := Checksum(u, PseudoHeaderSum(src, dst, ProtoUDP, n))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[udpChecksumOffset:], c)
	return UDPHeaderLen
}
