package wire

import (
	"encoding/binary"
	"errors"
	"net"
)

// Ethernet II header layout.
const (
	EthernetLen     = 14
	ethDstOffset    = 0
	ethSrcOffset    = 6
	ethTypeOffset   = 12
	EtherTypeIPv4   = 0x0800
	EtherTypeARP    = 0x0806
	EtherTypeVLAN   = 0x8100
	EtherTypeIPv6   = 0x86dd
	MACLen          = 6
	minEthernetSize = 60 // without FCS: shorter frames are padded on the wire
)

// BroadcastMAC is the Ethernet broadcast address.
var BroadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Errors that Check methods return.
var (
	ErrTruncated = errors.New("wire: truncated")
	ErrVersion   = errors.New("wire: not IPv4")
	ErrHeaderLen = errors.New("wire: bad header length")
	ErrLength    = errors.New("wire: length field beyond the packet")
	ErrFormat    = errors.New("wire: unsupported hardware or protocol format")
)

// Ethernet is an Ethernet II frame.
type Ethernet []byte

// Check validates that the header is present.
func (e Ethernet) Check() error {
	if len(e) < EthernetLen {
		return ErrTruncated
	}
	return nil
}

// Dst is the destination MAC, a view into the frame.
func (e Ethernet) Dst() net.HardwareAddr {
	return net.HardwareAddr(e[ethDstOffset : ethDstOffset+MACLen])
}

// Src is the source MAC, a view into the frame.
func (e Ethernet) Src() net.HardwareAddr {
	return net.HardwareAddr(e[ethSrcOffset : ethSrcOffset+MACLen])
}

// Type is the EtherType.
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[ethTypeOffset:]) }

// Payload is what follows the header.
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// Encode writes a header for a frame from src to dst of type typ.
func (e Ethernet) Encode(dst, src net.HardwareAddr, typ uint16) {
	copy(e[ethDstOffset:], dst)
	copy(e[ethSrcOffset:], src)
	binary.BigEndian.PutUint16(e[ethTypeOffset:], typ)
}

// PadLen returns n raised to the 60-byte Ethernet minimum: frames shorter
// than that must be padded with zeros before they are sent (IEEE 802.3).
func PadLen(n int) int { return max(n, minEthernetSize) }
