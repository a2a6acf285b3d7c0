package wire

import "net/netip"

// Layer is where in a frame a protocol core writes its packets, and so
// which headers the poller writes in front of them.
type Layer uint8

// The layers a core writes at.
const (
	// LayerLink: an Ethernet payload, at frame[EthernetLen:]. Out.DstMAC
	// and Out.EtherType give the Ethernet header (ARP, and the packets
	// that waited for a neighbour).
	LayerLink Layer = iota + 1
	// LayerNetwork: a whole IPv4 packet, at frame[EthernetLen:], to
	// Out.Dst (ICMP messages of the ip layer). The poller routes it.
	LayerNetwork
	// LayerTransport: an IPv4 payload of protocol Out.Proto, at
	// frame[EthernetLen+IPv4MinLen:], to Out.Dst (UDP, TCP). The
	// poller writes the IPv4 header and routes it.
	LayerTransport
)

// Offset is where a packet of layer l starts in a frame.
func (l Layer) Offset() int {
	if l == LayerTransport {
		return EthernetLen + IPv4MinLen
	}
	return EthernetLen
}

// Out describes the packet a protocol core's Output wrote at the start
// of the buffer b it was given. It is the one contract every core (arp,
// ip, udp, tcp) offers its poller:
//
//	Input(now, ...)   // a packet, as the layer below delivers it
//	Output(now time.Duration, b []byte) (Out, bool)
//	Deadline() (time.Duration, bool)
//
// Output runs the core's timers due at now, then writes its next packet
// into b and describes it; false when it has nothing to send. The poller
// calls it until then, after every round of input, so what input or an
// app gave the core leaves at once. A Len above len(b) means nothing was
// written: the next packet, of LayerNetwork or LayerTransport, needs Len
// bytes, and the caller asks again with a buffer that large (at most
// 65,535 bytes with the IPv4 header), then cuts it into fragments.
// Deadline is when the core's timers next need Output (at or before now
// if due); false when none runs. The core tells its owner of news for
// apps through an interface of its own (tcp.Notifier, udp.Notifier).
//
// Out is small (48 bytes) because it is returned once a packet, and once
// a core each round with nothing to send: the source address of an IPv4
// packet is 4 bytes in its padding, zero for the stack's own.
type Out struct {
	// Len is the packet's length, without the headers the poller writes
	// in front.
	Len int
	// Dst is the destination of a LayerNetwork or LayerTransport packet,
	// which the poller routes to.
	Dst netip.Addr
	// DstMAC and EtherType are the Ethernet header of a LayerLink packet.
	DstMAC    [MACLen]byte
	EtherType uint16
	// Proto is the IPv4 protocol of a LayerTransport packet.
	Proto uint8
	// Src is the source of a LayerTransport packet, the one its checksum
	// covers, which the ip layer writes; zero for the stack's address.
	Src [4]byte
}

// SourceFor is the local address of addrs that a packet to dst goes from:
// for a loopback destination (127/8) the first loopback address, as
// Linux's lo route gives 127.0.0.1; otherwise the first that is not one.
// False when addrs has none that fits.
func SourceFor(addrs []netip.Addr, dst netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.IsLoopback() == dst.IsLoopback() {
			return a, true
		}
	}
	return netip.Addr{}, false
}
