package wire

import (
	"testing"
)

// FuzzParse runs every view over arbitrary bytes: after Check returns nil
// no accessor may panic, and payloads stay within the bytes.
func FuzzParse(f *testing.F) {
	f.Add(udpFrame([]byte("seed")))
	arp := make([]byte, EthernetLen+ARPLen)
	Ethernet(arp).Encode(BroadcastMAC, macA, EtherTypeARP)
	ARPFields{Op: ARPRequest, SenderMAC: macA, SenderIP: addrA, TargetIP: addrB}.Encode(arp[EthernetLen:])
	f.Add(arp)
	icmp := udpFrame(make([]byte, 16))
	icmp[EthernetLen+9] = ProtoICMP
	f.Add(icmp)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Ethernet(b)
		if e.Check() != nil {
			return
		}
		_, _, _ = e.Dst(), e.Src(), e.Type()
		switch e.Type() {
		case EtherTypeARP:
			a := ARP(e.Payload())
			if a.Check() == nil {
				_, _, _, _, _ = a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP()
			}
		case EtherTypeIPv4:
			ip := IPv4(e.Payload())
			if ip.Check() != nil {
				return
			}
			_, _, _, _, _ = ip.ChecksumValid(), ip.ID(), ip.FragmentOffset(), ip.Src(), ip.Dst()
			_ = ip.Options()
			p := ip.Payload()
			if len(p) > len(ip) {
				t.Fatalf("payload %d longer than packet %d", len(p), len(ip))
			}
			switch ip.Protocol() {
			case ProtoUDP:
				u := UDP(p)
				if u.Check() == nil {
					_, _, _ = u.SrcPort(), u.DstPort(), u.ChecksumValid(ip.Src(), ip.Dst())
					if len(u.Payload()) > len(u) {
						t.Fatal("udp payload past the datagram")
					}
				}
			case ProtoICMP:
				m := ICMP(p)
				if m.Check() == nil {
					_, _, _, _, _ = m.Type(), m.Code(), m.ID(), m.Seq(), m.ChecksumValid()
					_, _ = m.NextHopMTU(), m.Payload()
				}
			}
		}
	})
}
