// Package testframe builds and checks Ethernet/IPv4/UDP frames byte by byte
// for tests of the layers below the protocol packages, which cannot use
// those packages' builders without an import cycle.
package testframe

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// UDP describes one Ethernet/IPv4/UDP frame.
type UDP struct {
	SrcMAC, DstMAC net.HardwareAddr
	Src, Dst       netip.AddrPort // IPv4
	ID             uint16         // IPv4 identification
	Payload        []byte
}

// Header lengths of the frames this package builds.
const (
	EthLen   = 14
	IPv4Len  = 20
	UDPLen   = 8
	UDPFirst = EthLen + IPv4Len + UDPLen // offset of the UDP payload
)

// Build returns the frame with valid IPv4 header and UDP checksums.
func (u UDP) Build() []byte {
	b := make([]byte, UDPFirst+len(u.Payload))
	copy(b[0:6], u.DstMAC)
	copy(b[6:12], u.SrcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[EthLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(IPv4Len+UDPLen+len(u.Payload)))
	binary.BigEndian.PutUint16(ip[4:], u.ID)
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	src, dst := u.Src.Addr().As4(), u.Dst.Addr().As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:IPv4Len], 0))
	udp := ip[IPv4Len:]
	binary.BigEndian.PutUint16(udp[0:], u.Src.Port())
	binary.BigEndian.PutUint16(udp[2:], u.Dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(UDPLen+len(u.Payload)))
	copy(udp[UDPLen:], u.Payload)
	sum := Checksum(udp, pseudoHeader(ip))
	if sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return b
}

// UDPChecksumOK reports whether frame is IPv4/UDP with a valid, complete
// UDP checksum (frames whose checksum the sender left to an offload fail).
func UDPChecksumOK(frame []byte) bool {
	if len(frame) < UDPFirst || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return false
	}
	ip := frame[EthLen:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[9] != 17 || ihl < IPv4Len || total > len(ip) || total < ihl+UDPLen {
		return false
	}
	return Checksum(ip[ihl:total], pseudoHeader(ip)) == 0
}

func pseudoHeader(ip []byte) uint32 {
	ihl := int(ip[0]&0x0f) * 4
	l4len := uint32(binary.BigEndian.Uint16(ip[2:])) - uint32(ihl)
	var sum uint32
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	return sum + uint32(ip[9]) + l4len
}

// Checksum is the Internet checksum (RFC 1071) of b, starting from a
// partial sum.
func Checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
