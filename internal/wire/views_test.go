package wire

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	macA  = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB  = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	addrA = netip.MustParseAddr("198.18.0.1")
	addrB = netip.MustParseAddr("198.18.0.2")
)

// udpFrame builds an Ethernet/IPv4/UDP frame with the encoders.
func udpFrame(payload []byte) []byte {
	b := make([]byte, EthernetLen+IPv4MinLen+UDPHeaderLen+len(payload))
	Ethernet(b).Encode(macB, macA, EtherTypeIPv4)
	ip := b[EthernetLen:]
	copy(ip[IPv4MinLen+UDPHeaderLen:], payload)
	UDPFields{SrcPort: 1234, DstPort: 7}.Encode(ip[IPv4MinLen:], len(payload), addrA, addrB)
	IPv4Fields{TotalLen: len(ip), ID: 99, DontFragment: true, Protocol: ProtoUDP, Src: addrA, Dst: addrB}.Encode(ip)
	return b
}

func TestUDPFrameRoundTrip(t *testing.T) {
	f := udpFrame([]byte("hello, world"))
	e := Ethernet(f)
	require.NoError(t, e.Check())
	assert.Equal(t, macB, e.Dst())
	assert.Equal(t, macA, e.Src())
	assert.EqualValues(t, EtherTypeIPv4, e.Type())

	ip := IPv4(e.Payload())
	require.NoError(t, ip.Check())
	assert.True(t, ip.ChecksumValid())
	assert.Equal(t, 20, ip.HeaderLen())
	assert.EqualValues(t, 99, ip.ID())
	assert.True(t, ip.DontFragment())
	assert.False(t, ip.IsFragment())
	assert.EqualValues(t, 64, ip.TTL())
	assert.EqualValues(t, ProtoUDP, ip.Protocol())
	assert.Equal(t, addrA, ip.Src())
	assert.Equal(t, addrB, ip.Dst())
	assert.Empty(t, ip.Options())

	u := UDP(ip.Payload())
	require.NoError(t, u.Check())
	assert.EqualValues(t, 1234, u.SrcPort())
	assert.EqualValues(t, 7, u.DstPort())
	assert.Equal(t, "hello, world", string(u.Payload()))
	assert.True(t, u.ChecksumValid(addrA, addrB))
	assert.False(t, u.ChecksumValid(addrA, netip.MustParseAddr("198.18.0.3")), "the pseudo-header covers the addresses")

	ip.SetTTL(1)
	assert.True(t, ip.ChecksumValid(), "SetTTL keeps the header checksum right")
	assert.EqualValues(t, 1, ip.TTL())
}

func TestIPv4CheckRejects(t *testing.T) {
	good := IPv4(udpFrame(make([]byte, 10))[EthernetLen:])
	mod := func(f func(p IPv4)) IPv4 { p := append(IPv4(nil), good...); f(p); return p }
	for _, c := range []struct {
		name string
		p    IPv4
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"19 bytes", good[:19], ErrTruncated},
		{"version 6", mod(func(p IPv4) { p[0] = 0x65 }), ErrVersion},
		{"IHL 4", mod(func(p IPv4) { p[0] = 0x44 }), ErrHeaderLen},
		{"IHL beyond the bytes", mod(func(p IPv4) { p[0] = 0x4f }), ErrHeaderLen},
		{"total length below the header", mod(func(p IPv4) { p[2], p[3] = 0, 19 }), ErrLength},
		{"total length beyond the bytes", mod(func(p IPv4) { p[2], p[3] = 0, 39 }), ErrLength},
	} {
		assert.ErrorIs(t, c.p.Check(), c.want, c.name)
	}
	padded := append(append(IPv4(nil), good...), 0, 0, 0, 0)
	require.NoError(t, padded.Check(), "Ethernet padding after the packet is fine")
	assert.Len(t, padded.Payload(), 18, "the payload stops at the total length")
}

func TestIPv4Fragments(t *testing.T) {
	p := IPv4(udpFrame(make([]byte, 10))[EthernetLen:])
	p[6], p[7] = 0x20, 0x03 // MF, offset 3 units
	assert.True(t, p.MoreFragments())
	assert.Equal(t, 24, p.FragmentOffset())
	assert.True(t, p.IsFragment())
}

func TestUDPCheckRejects(t *testing.T) {
	u := UDP(udpFrame(make([]byte, 10))[EthernetLen+IPv4MinLen:])
	assert.ErrorIs(t, u[:7].Check(), ErrTruncated)
	short := append(UDP(nil), u...)
	short[4], short[5] = 0, 7
	assert.ErrorIs(t, short.Check(), ErrLength)
	long := append(UDP(nil), u...)
	long[4], long[5] = 0, 19
	assert.ErrorIs(t, long.Check(), ErrLength)
}

func TestARPEncodeAndView(t *testing.T) {
	b := make([]byte, ARPLen)
	n := ARPFields{Op: ARPRequest, SenderMAC: macA, SenderIP: addrA, TargetIP: addrB}.Encode(b)
	require.Equal(t, ARPLen, n)
	a := ARP(b)
	require.NoError(t, a.Check())
	assert.EqualValues(t, ARPRequest, a.Op())
	assert.Equal(t, macA, a.SenderMAC())
	assert.Equal(t, addrA, a.SenderIP())
	assert.Equal(t, net.HardwareAddr{0, 0, 0, 0, 0, 0}, a.TargetMAC())
	assert.Equal(t, addrB, a.TargetIP())
	assert.ErrorIs(t, a[:27].Check(), ErrTruncated)
	b[5] = 16 // an IPv6-sized protocol address
	assert.ErrorIs(t, a.Check(), ErrFormat)
}

func TestICMPEncodeAndView(t *testing.T) {
	b := make([]byte, ICMPHeaderLen+5)
	copy(b[ICMPHeaderLen:], "hello")
	ICMPFields{Type: ICMPEcho, Rest: 0x1234_0007}.Encode(b)
	m := ICMP(b)
	require.NoError(t, m.Check())
	assert.True(t, m.ChecksumValid())
	assert.EqualValues(t, ICMPEcho, m.Type())
	assert.EqualValues(t, 0x1234, m.ID())
	assert.EqualValues(t, 7, m.Seq())
	assert.Equal(t, "hello", string(m.Payload()))
	assert.False(t, m.IsError())
	m[0] = ICMPDestUnreachable
	assert.True(t, m.IsError())
	assert.ErrorIs(t, m[:7].Check(), ErrTruncated)
}

func TestPadLen(t *testing.T) {
	assert.Equal(t, 60, PadLen(42))
	assert.Equal(t, 1514, PadLen(1514))
}

func BenchmarkParseIPv4UDP(b *testing.B) {
	f := udpFrame(make([]byte, 18))
	b.ReportAllocs()
	var sink int
	for b.Loop() {
		e := Ethernet(f)
		if e.Check() != nil || e.Type() != EtherTypeIPv4 {
			b.Fatal("bad frame")
		}
		ip := IPv4(e.Payload())
		if ip.Check() != nil || !ip.ChecksumValid() {
			b.Fatal("bad ip")
		}
		u := UDP(ip.Payload())
		if u.Check() != nil || !u.ChecksumValid(ip.Src(), ip.Dst()) {
			b.Fatal("bad udp")
		}
		sink += int(u.DstPort()) + len(u.Payload())
	}
	_ = sink
}

func BenchmarkBuildIPv4UDP(b *testing.B) {
	buf := make([]byte, EthernetLen+IPv4MinLen+UDPHeaderLen+18)
	b.ReportAllocs()
	for b.Loop() {
		Ethernet(buf).Encode(macB, macA, EtherTypeIPv4)
		ip := buf[EthernetLen:]
		UDPFields{SrcPort: 1234, DstPort: 7}.Encode(ip[IPv4MinLen:], 18, addrA, addrB)
		IPv4Fields{TotalLen: len(ip), Protocol: ProtoUDP, Src: addrA, Dst: addrB}.Encode(ip)
	}
}
