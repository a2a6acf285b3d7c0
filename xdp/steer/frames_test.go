package steer

import (
	"encoding/binary"
	"net/netip"
)

// Test frames: just enough Ethernet, IPv4 and ARP to exercise the program.
// Checksums are left zero: the program never looks at them.

var (
	ourAddr   = netip.MustParseAddr("198.18.0.2")
	otherAddr = netip.MustParseAddr("198.18.0.9")
	peerAddr  = netip.MustParseAddr("198.18.0.3")
	peerMAC   = []byte{0x02, 0, 0, 0, 0, 3}
	ourMAC    = []byte{0x02, 0, 0, 0, 0, 2}
)

func ethernet(etherType uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], ourMAC)
	copy(f[6:12], peerMAC)
	binary.BigEndian.PutUint16(f[12:14], etherType)
	return append(f, payload...)
}

// ipv4 describes an IPv4 packet; zero fields take defaults (a UDP datagram
// from peerAddr to ourAddr, IHL 5, 8 payload bytes after the ports).
type ipv4 struct {
	dst      netip.Addr
	proto    uint8
	ihl      int    // header length in 32-bit words
	version  int    // default 4
	fragOff  uint16 // fragment offset in 8-byte units
	mf       bool   // more fragments
	dport    uint16
	noL4     bool // stop right after the IPv4 header
	l4Length int  // bytes after the IPv4 header; default 16
}

func (p ipv4) frame() []byte {
	if !p.dst.IsValid() {
		p.dst = ourAddr
	}
	if p.proto == 0 {
		p.proto = ProtoUDP
	}
	if p.ihl == 0 {
		p.ihl = 5
	}
	if p.version == 0 {
		p.version = 4
	}
	if p.l4Length == 0 {
		p.l4Length = 16
	}
	if p.noL4 {
		p.l4Length = 0
	}
	hlen := max(p.ihl*4, 20) // an IHL under 5 still gets the fixed fields
	pkt := make([]byte, hlen+p.l4Length)
	pkt[0] = byte(p.version<<4 | p.ihl)
	binary.BigEndian.PutUint16(pkt[2:4], uint16(len(pkt)))
	frag := p.fragOff & 0x1fff
	if p.mf {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(pkt[6:8], frag)
	pkt[8] = 64
	pkt[9] = p.proto
	src := peerAddr.As4()
	dst := p.dst.As4()
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	for i := 20; i < hlen; i++ {
		pkt[i] = 1 // IPv4 option NOP (RFC 791)
	}
	if p.l4Length >= 4 {
		binary.BigEndian.PutUint16(pkt[hlen:], 40000)
		binary.BigEndian.PutUint16(pkt[hlen+2:], p.dport)
	}
	return ethernet(0x0800, pkt)
}

// arp builds an Ethernet/IPv4 ARP packet (RFC 826) asking for, or answering
// to, tpa. hlen is normally 6.
func arp(op uint16, tpa netip.Addr, hlen byte) []byte {
	pkt := make([]byte, 28)
	binary.BigEndian.PutUint16(pkt[0:2], 1)      // Ethernet
	binary.BigEndian.PutUint16(pkt[2:4], 0x0800) // IPv4
	pkt[4], pkt[5] = hlen, 4
	binary.BigEndian.PutUint16(pkt[6:8], op)
	copy(pkt[8:14], peerMAC)
	spa := peerAddr.As4()
	copy(pkt[14:18], spa[:])
	t := tpa.As4()
	copy(pkt[24:28], t[:])
	return ethernet(0x0806, pkt)
}
