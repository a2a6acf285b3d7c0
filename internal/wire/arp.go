package wire

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// ARP for IPv4 over Ethernet (RFC 826) layout.
const (
	ARPLen       = 28
	ARPRequest   = 1
	ARPReply     = 2
	arpHTypeEth  = 1
	arpOpOffset  = 6
	arpShaOffset = 8
	arpSpaOffset = 14
	arpThaOffset = 18
	arpTpaOffset = 24
)

// ARP is an ARP packet, the payload of an Ethernet frame.
type ARP []byte

// Check validates length and that the packet maps IPv4 to Ethernet (the
// only kind the stack speaks: htype 1, ptype 0x0800, hlen 6, plen 4).
func (a ARP) Check() error {
	if len(a) < ARPLen {
		return ErrTruncated
	}
	if binary.BigEndian.Uint16(a[0:]) != arpHTypeEth || binary.BigEndian.Uint16(a[2:]) != EtherTypeIPv4 ||
		a[4] != MACLen || a[5] != 4 {
		return ErrFormat
	}
	return nil
}

// Op is the operation: ARPRequest or ARPReply.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOpOffset:]) }

// SenderMAC is the sender hardware address, a view into the packet.
func (a ARP) SenderMAC() net.HardwareAddr {
	return net.HardwareAddr(a[arpShaOffset : arpShaOffset+MACLen])
}

// SenderIP is the sender protocol address.
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(a[arpSpaOffset:])) }

// TargetMAC is the target hardware address, a view into the packet.
func (a ARP) TargetMAC() net.HardwareAddr {
	return net.HardwareAddr(a[arpThaOffset : arpThaOffset+MACLen])
}

// TargetIP is the target protocol address.
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(a[arpTpaOffset:])) }

// ARPFields describes an ARP packet to encode.
type ARPFields struct {
	Op                   uint16
	SenderMAC, TargetMAC net.HardwareAddr // a nil TargetMAC encodes as zeros
	SenderIP, TargetIP   netip.Addr
}

// Encode writes the packet into b, which must hold ARPLen bytes, and
// returns ARPLen.
func (f ARPFields) Encode(b []byte) int {
	a := b[:ARPLen]
	binary.BigEndian.PutUint16(a[0:], arpHTypeEth)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = MACLen, 4
	binary.BigEndian.PutUint16(a[arpOpOffset:], f.Op)
	copy(a[arpShaOffset:arpShaOffset+MACLen], f.SenderMAC)
	spa, tpa := f.SenderIP.As4(), f.TargetIP.As4()
	copy(a[arpSpaOffset:], spa[:])
	clear(a[arpThaOffset : arpThaOffset+MACLen])
	copy(a[arpThaOffset:arpThaOffset+MACLen], f.TargetMAC)
	copy(a[arpTpaOffset:], tpa[:])
	return ARPLen
}
