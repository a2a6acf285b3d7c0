package wire

import "encoding/binary"

// ICMPv4 layout and the types and codes the stack uses (RFC 792).
const (
	ICMPHeaderLen        = 8
	ICMPEchoReply        = 0
	ICMPDestUnreachable  = 3
	ICMPEcho             = 8
	ICMPTimeExceeded     = 11
	ICMPNetUnreachable   = 0 // codes of ICMPDestUnreachable
	ICMPHostUnreachable  = 1
	ICMPProtoUnreachable = 2
	ICMPPortUnreachable  = 3
	ICMPFragNeeded       = 4
	icmpCsumOffset       = 2
	icmpIDOffset         = 4
	icmpSeqOffset        = 6
)

// ICMP is an ICMPv4 message.
type ICMP []byte

// Check validates that the 8-byte header is present.
func (m ICMP) Check() error {
	if len(m) < ICMPHeaderLen {
		return ErrTruncated
	}
	return nil
}

// ChecksumValid reports whether the checksum over the whole message
// verifies.
func (m ICMP) ChecksumValid() bool { return Checksum(m, 0) == 0 }

// Type is the message type.
func (m ICMP) Type() uint8 { return m[0] }

// Code is the message code.
func (m ICMP) Code() uint8 { return m[1] }

// Checksum is the checksum field.
func (m ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(m[icmpCsumOffset:]) }

// ID is an echo message's identifier.
func (m ICMP) ID() uint16 { return binary.BigEndian.Uint16(m[icmpIDOffset:]) }

// Seq is an echo message's sequence number.
func (m ICMP) Seq() uint16 { return binary.BigEndian.Uint16(m[icmpSeqOffset:]) }

// NextHopMTU is the MTU a "fragmentation needed" message reports (RFC
// 1191 section 4); 0 from routers that predate it.
func (m ICMP) NextHopMTU() int { return int(binary.BigEndian.Uint16(m[icmpSeqOffset:])) }

// Payload follows the header: the echo data, or for errors the quoted
// IPv4 header and the first 8 bytes of its payload.
func (m ICMP) Payload() []byte { return m[ICMPHeaderLen:] }

// IsError reports whether the type is an error message, which must never
// be answered with another error (RFC 1122 3.2.2).
func (m ICMP) IsError() bool {
	switch m.Type() {
	case ICMPDestUnreachable, ICMPTimeExceeded, 4 /* source quench */, 5 /* redirect */, 12 /* parameter problem */ :
		return true
	}
	return false
}

// ICMPFields describes an ICMP header to encode.
type ICMPFields struct {
	Type, Code uint8
	Rest       uint32 // identifier and sequence for echo; next-hop MTU in the low 16 bits for fragmentation needed; 0 otherwise
}

// Encode writes the header over b, whose bytes after the header hold the
// payload already, computes the checksum over all of b and returns 8.
func (f ICMPFields) Encode(b []byte) int {
	b[0], b[1] = f.Type, f.Code
	binary.BigEndian.PutUint16(b[icmpCsumOffset:], 0)
	binary.BigEndian.PutUint32(b[icmpIDOffset:], f.Rest)
	binary.BigEndian.PutUint16(b[icmpCsumOffset:], Checksum(b, 0))
	return ICMPHeaderLen
}
