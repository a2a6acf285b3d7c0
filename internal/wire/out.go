package wire

import (
	"net"
	"net/netip"
)

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
// of the buffer it was given (b). Every core offers the same contract:
//
//	Output(now time.Duration, b []byte) (Out, bool)
//	Deadline() (time.Duration, bool)
//
// Output runs the core's timers due at now, writes its next packet into
// b and describes it; false when it has nothing to send. A Len above
// len(b) means it wrote nothing: its next packet, at LayerNetwork or
// LayerTransport, needs Len bytes, and the caller asks again with a
// buffer that large (at most 65,535 bytes with the IPv4 header), to cut
// the packet into fragments. Deadline is when Output next has work: a
// time at or before now when it has some now, false when it has none
// until the next input.
type Out struct {
	// Len is the packet's length, without the headers the poller writes
	// in front.
	Len int
	// DstMAC and EtherType are the Ethernet header of a LayerLink packet.
	// DstMAC may alias the core's memory: use it before the next call.
	DstMAC    net.HardwareAddr
	EtherType uint16
	// Src and Dst are the addresses of a LayerNetwork or LayerTransport
	// packet: Src is the one a transport checksum covers (the stack's),
	// Dst the destination the poller routes to.
	Src, Dst netip.Addr
	// Proto is the IPv4 protocol of a LayerTransport packet.
	Proto uint8
}
