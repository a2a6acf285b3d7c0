package fastpath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/internal/mpsc"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// Config describes one poller. IP.Addr is required; the ARP, UDP and TCP
// configs get the link's MAC, the stack's address and the MTU filled in.
type Config struct {
	Link  nic.Link
	IP    ip.Config
	ARP   arp.Config
	UDP   udp.Config
	TCP   tcp.Config
	Batch int // frames per receive and transmit batch; default 64
	// Spin is how long Run keeps polling after the last frame or app work
	// before it parks; default 200 µs. Spinning is what buys latency (a
	// wakeup costs 20–85 µs on the lab machines); parking is what makes an
	// idle stack free.
	Spin time.Duration
	// SpinOnly makes Run poll without ever parking, for a dedicated core.
	SpinOnly bool
}

// Poller owns the protocol state of one queue. See the package doc.
type Poller struct {
	link nic.Link
	mac  net.HardwareAddr
	ip   *ip.Layer
	arp  *arp.Cache
	udp  *udp.Table
	ping *udp.Table // ICMP echo sockets: udp's endpoints in ping mode
	tcp  *tcp.Table

	spin     time.Duration
	spinOnly bool
	now      time.Duration // the time of the Poll in progress
	rx       []nic.Frame
	tx       []nic.Frame // frames filled and waiting for Transmit: tx[:txn]

	arpOut, arpIn []*arpRing     // ARP replies to and from the other pollers of the device (Share)
	arpInput      func(wire.ARP) // p.arp.Input at p.now, made once: a method value allocates
	txn           int
	spare         []nic.Frame // transmit buffers allocated but not yet filled
	// cores are the protocol cores whose output the poller collects, in
	// this order (see output).
	cores []registered
	// big holds a packet longer than the MTU (a UDP datagram) while it is
	// cut into fragments: 65,535 bytes, allocated with the first one.
	big []byte
	// more: the round left work for the next at once (output waiting for
	// a transmit frame, or news told after output that the inline hooks
	// have not seen), so Run does not park.
	more  bool
	stats Stats

	// The app side (see app.go): work app goroutines hand the poller,
	// and the sleeping flag they check to wake it.
	tasks    mpsc.Queue[func()]
	kicks    mpsc.Queue[Kickable]
	sleeping atomic.Bool
	parker   nic.Parker // the link's, if it has one
	woke     bool       // this round rang an app goroutine's bell
	hooks    []func(time.Duration)
	tap      atomic.Pointer[tapBox] // a capture's (tap.go); nil mostly

	// Multi-queue (handover.go): this poller's queue, the device's RSS,
	// the pollers of the device and the rings to and from them, by queue.
	qid                     int
	rss                     RSS
	peers                   []*Poller
	handoverOut, handoverIn []*handoverRing

	// loopOut takes this round's packets to ourselves, loopIn holds the
	// last round's while they are delivered (loopback.go).
	loopIn, loopOut loopQueue
}

// Stats counts what the poller itself saw, below and between the protocol
// cores (which count their own in their Stats).
type Stats struct {
	RxFrames       uint64 // frames received
	RxBadFrames    uint64 // too short for Ethernet, or a malformed ARP packet
	RxOtherHost    uint64 // unicast to another MAC
	RxOtherType    uint64 // neither IPv4 nor ARP
	TxFrames       uint64 // frames handed to the link
	TxNoBuffer     uint64 // replies dropped: no transmit buffer free
	TxNoRoute      uint64 // packets dropped: no route to the destination
	TxUnresolved   uint64 // packets dropped: their next hop did not resolve (or no room to wait for it)
	TxErrors       uint64 // Transmit errors from the link
	RxBroadcastTCP uint64 // TCP segments to a broadcast address, dropped
	// ARPShareDrops counts ARP replies not passed to another poller of
	// the device because its ring was full (see Share).
	ARPShareDrops uint64
	// TxLinkDown counts frames handed to the link while it was down
	// (nic.ErrLinkDown: interface down, carrier lost); the link kept or
	// dropped them, and TCP retransmits what was lost once it is up.
	TxLinkDown uint64
	// Rounds counts the calls of Poll, each a round of input, timers,
	// app news and output; Parks the times Run parked (slept until
	// woken).
	Rounds, Parks uint64
	// HandoversOut and HandoversIn count TCP segments passed to and taken
	// from the poller owning their flow; HandoverDrops those not passed
	// because its ring was full.
	HandoversOut, HandoversIn, HandoverDrops uint64
	// LoopbackPackets counts the packets to the stack itself (its own
	// address, 127/8) delivered on the loopback path; LoopbackDrops those
	// dropped because its queue was full.
	LoopbackPackets, LoopbackDrops uint64
}

// New creates a poller on cfg.Link.
func New(cfg Config) (*Poller, error) {
	if cfg.Link == nil {
		return nil, fmt.Errorf("fastpath: no link")
	}
	if cfg.Batch == 0 {
		cfg.Batch = 64
	}
	if cfg.Spin == 0 {
		cfg.Spin = 200 * time.Microsecond
	}
	if cfg.Batch < 1 {
		return nil, fmt.Errorf("fastpath: batch %d: must be positive", cfg.Batch)
	}
	if cfg.IP.MTU == 0 {
		cfg.IP.MTU = cfg.Link.MTU()
	}
	p := &Poller{
		link:     cfg.Link,
		mac:      cfg.Link.MAC(),
		spin:     cfg.Spin,
		spinOnly: cfg.SpinOnly,
		rx:       make([]nic.Frame, cfg.Batch),
		tx:       make([]nic.Frame, cfg.Batch),
		spare:    make([]nic.Frame, 0, cfg.Batch),
	}
	p.arpInput = func(a wire.ARP) { p.arp.Input(p.now, a) }
	p.parker, _ = cfg.Link.(nic.Parker)
	// DF on UDP is one choice for both layers: ip sets it, udp then
	// refuses what would need fragmenting.
	df := cfg.IP.DontFragmentUDP || cfg.UDP.DontFragment
	cfg.IP.DontFragmentUDP, cfg.UDP.DontFragment = df, df
	var err error
	if p.ip, err = ip.New(cfg.IP); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	// The secondary addresses after the primary one: ARP sends its own
	// requests from the first, and Dial's unspecified source is it too.
	cfg.ARP.MAC, cfg.ARP.Addrs = p.mac, []netip.Prefix{cfg.IP.Addr}
	for _, a := range cfg.IP.Secondary {
		cfg.ARP.Addrs = append(cfg.ARP.Addrs, netip.PrefixFrom(a, cfg.IP.Addr.Bits()))
	}
	if p.arp, err = arp.New(cfg.ARP); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	// 127.0.0.1 is local too, reached on the loopback path only (ip.Input
	// drops 127/8 from the wire).
	local := append([]netip.Addr{cfg.IP.Addr.Addr()}, cfg.IP.Secondary...)
	local = append(local, ip.LoopbackAddr)
	cfg.UDP.Addrs, cfg.UDP.MTU = local, p.ip.MTU()
	if p.udp, err = udp.New(cfg.UDP); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	ping := cfg.UDP
	ping.Ping = true
	if p.ping, err = udp.New(ping); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	cfg.TCP.Addrs, cfg.TCP.MTU = local, p.ip.MTU()
	cfg.TCP.PathMTU = func(dst netip.Addr) int { return p.ip.PathMTU(p.now, dst) }
	cfg.TCP.PortFilter = p.OwnsDial
	if p.tcp, err = tcp.New(cfg.TCP); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	// ARP first: its announcements and the packets it releases go before
	// new packets that might queue behind the same neighbour.
	p.register(p.arp, wire.LayerLink)
	p.register(p.ip, wire.LayerNetwork)
	p.register(p.udp, wire.LayerTransport)
	p.register(p.ping, wire.LayerTransport)
	p.register(p.tcp, wire.LayerTransport)
	return p, nil
}

// core is the contract every protocol core offers (internal/wire's Out):
// Output runs the timers due at now and writes the core's next packet
// into b, describing it; Deadline is when its timers next need Output.
type core interface {
	Output(now time.Duration, b []byte) (wire.Out, bool)
	Deadline() (time.Duration, bool)
}

// registered is a protocol core in the output loop, with the layer it
// writes its packets at.
type registered struct {
	core  core
	layer wire.Layer
}

// register adds c, which writes its packets at layer, to the cores whose
// output the poller collects each round, after those registered before.
func (p *Poller) register(c core, layer wire.Layer) {
	p.cores = append(p.cores, registered{c, layer})
}

// TCP is the poller's TCP table, to dial and listen on the poller's
// goroutine.
func (p *Poller) TCP() *tcp.Table { return p.tcp }

// UDP is the poller's UDP table, to bind endpoints on the poller's goroutine.
func (p *Poller) UDP() *udp.Table { return p.udp }

// Ping is the poller's table of ICMP echo sockets (udp's ping mode), to
// bind endpoints on the poller's goroutine.
func (p *Poller) Ping() *udp.Table { return p.ping }

// ARP is the poller's neighbour cache.
func (p *Poller) ARP() *arp.Cache { return p.arp }

// IP is the poller's IPv4 layer.
func (p *Poller) IP() *ip.Layer { return p.ip }

// Link is the link the poller drives.
func (p *Poller) Link() nic.Link { return p.link }

// Stats returns the poller's own counters.
func (p *Poller) Stats() Stats { return p.stats }

// Deadline is the earliest time a timer needs a Poll, if any: the
// earliest of the cores' deadlines.
func (p *Poller) Deadline() (t time.Duration, ok bool) {
	for _, c := range p.cores {
		if t2, ok2 := c.core.Deadline(); ok2 && (!ok || t2 < t) {
			t, ok = t2, true
		}
	}
	return t, ok
}

// Poll does one round at time now: a batch of received frames, the news
// for app goroutines, the inline hooks, the output of every core (with
// the timers that are due), and one Transmit. It returns the number of
// frames received, so a driving loop knows whether to keep spinning.
//
// When the news woke an app goroutine, Poll yields the processor once
// before it collects output: the runtime runs the goroutine it just
// readied next on this P, so a reply it writes at once leaves in this
// round's batch, with the ACK of the request, instead of a bare ACK now
// and the reply a round later (measured: half the frames per
// request/response, p50 from 16–29 to 9–12 µs between two stacks).
func (p *Poller) Poll(now time.Duration) (int, error) {
	p.now = now
	p.woke, p.more = false, false
	p.stats.Rounds++
	p.takeAppWork()
	p.takeARP()
	p.takeHandovers()
	p.takeLoopback()
	n, err := p.link.Receive(p.rx)
	if err != nil {
		return 0, fmt.Errorf("fastpath: receive: %w", err)
	}
	p.tapFrames(In, p.rx[:n])
	for _, f := range p.rx[:n] {
		p.input(f.Data)
	}
	p.stats.RxFrames += uint64(n)
	// The received frames go back only now: replies copied from them.
	p.link.Release(p.rx[:n])
	p.notifyApps()
	// The inline services run after the news, so they answer what came
	// this round in this round's batch, visiting only the connections
	// with news (their Owners heard Notify) rather than all of them.
	for _, h := range p.hooks {
		h(now)
	}
	if p.woke {
		runtime.Gosched()
		p.takeAppWork()
	}
	p.output()
	p.neighboursFailed()
	// The timers ran in output: their news (a connection that timed out,
	// a dial whose neighbour failed) is told now, and the inline hooks see
	// it at once in the next round.
	if p.notifyApps() || len(p.loopOut.ends) > 0 {
		p.more = true
	}
	err = p.flush()
	return n, err
}

// input runs one received frame to completion.
func (p *Poller) input(frame []byte) {
	e := wire.Ethernet(frame)
	if e.Check() != nil {
		p.stats.RxBadFrames++
		return
	}
	linkBroadcast := e.Dst()[0]&1 != 0 // broadcast and multicast
	if !linkBroadcast && !bytes.Equal(e.Dst(), p.mac) {
		p.stats.RxOtherHost++
		return
	}
	switch e.Type() {
	case wire.EtherTypeARP:
		a := wire.ARP(e.Payload())
		if a.Check() != nil {
			p.stats.RxBadFrames++
			return
		}
		p.arp.Input(p.now, a)
		p.shareARP(a)
	case wire.EtherTypeIPv4:
		d, ok := p.ip.Input(p.now, e.Payload())
		if !ok {
			return
		}
		d.LinkBroadcast = linkBroadcast
		p.deliver(d)
	default:
		p.stats.RxOtherType++
	}
}

// deliver hands a datagram to its protocol.
func (p *Poller) deliver(d ip.Datagram) {
	switch d.Proto {
	case wire.ProtoICMP:
		p.icmp(d)
	case wire.ProtoUDP:
		if p.udp.Input(p.now, d.Src, d.Dst, d.Payload) == udp.NoPort {
			p.unreachable(d, wire.ICMPPortUnreachable)
		}
	case wire.ProtoTCP:
		// RFC 1122 4.2.3.10: TCP ignores segments to broadcast addresses.
		if d.LinkBroadcast || d.Broadcast {
			p.stats.RxBroadcastTCP++
			return
		}
		if p.handOver(d.Src, d.Dst, d.Payload) {
			return
		}
		p.tcp.Input(p.now, d.Src, d.Dst, d.Payload)
	default:
		// RFC 1122 3.2.2.1's answer to a protocol we do not speak.
		p.unreachable(d, wire.ICMPProtoUnreachable)
	}
}

// icmp answers an ICMP datagram (an echo request) and passes on what it
// tells about ours: errors to the transports, echo replies to the ping
// sockets.
func (p *Poller) icmp(d ip.Datagram) {
	// An echo reply longer than the path MTU (the request came in
	// fragments) is written in place, over the request, then cut into
	// frames: never truncated (RFC 1122 section 3.2.2.6).
	if mtu := p.ip.PathMTU(p.now, d.Src); ip.HeaderLen+len(d.Payload) > mtu {
		n, ev := p.ip.ICMPInput(p.now, d, d.Header)
		if n > 0 {
			p.sendFragments(d.Header[:n], d.Src, mtu)
		}
		p.icmpEvent(d, ev)
		return
	}
	f, ok := p.txBuffer()
	if !ok {
		return
	}
	n, ev := p.ip.ICMPInput(p.now, d, f.Data[wire.EthernetLen:])
	if n > 0 {
		p.sendIP(f, d.Src, n)
	} else {
		p.spare = append(p.spare, f)
	}
	p.icmpEvent(d, ev)
}

// icmpEvent passes on what ICMPInput reported about d: an echo reply,
// whole, to the ping socket of its identifier, an error to icmpError.
func (p *Poller) icmpEvent(d ip.Datagram, ev ip.ICMPEvent) {
	if ev.Kind == ip.EventEchoReply {
		p.ping.EchoReply(d.Src, d.Dst, d.Payload)
		return
	}
	p.icmpError(ev)
}

// icmpError passes an ICMP error about a datagram we sent to its
// transport: port unreachable to UDP; to TCP, fragmentation needed (a
// smaller MSS) and the other destination unreachable codes and time
// exceeded, which end a connect and are soft errors otherwise (tcp's
// Unreachable says how, after Linux's tcp_v4_err).
func (p *Poller) icmpError(ev ip.ICMPEvent) {
	if ev.Kind != ip.EventError || (ev.Type != wire.ICMPDestUnreachable && ev.Type != wire.ICMPTimeExceeded) {
		return
	}
	local, remote := netip.AddrPortFrom(ev.Src, ev.SrcPort), netip.AddrPortFrom(ev.Dst, ev.DstPort)
	switch {
	case ev.Proto == wire.ProtoUDP && ev.Type == wire.ICMPDestUnreachable && ev.Code == wire.ICMPPortUnreachable:
		p.udp.PortUnreachable(local, remote)
	case ev.Proto != wire.ProtoTCP || len(ev.Transport) < 8:
	case ev.Type == wire.ICMPDestUnreachable && ev.Code == wire.ICMPFragNeeded:
		if ev.MTU > 0 {
			p.tcp.FragmentationNeeded(local, remote, tcpSeq(ev.Transport), ev.MTU)
		}
	default:
		p.tcp.Unreachable(p.now, local, remote, tcpSeq(ev.Transport), ev.Code, ev.Type == wire.ICMPTimeExceeded)
	}
}

// tcpSeq is the sequence number of a TCP header (at least 8 bytes).
func tcpSeq(h []byte) tcp.Seq { return tcp.Seq(binary.BigEndian.Uint32(h[4:])) }

// linkFailed tells TCP that pkt, an IPv4 packet of ours, was refused
// because its next hop failed to resolve, as an ICMP host unreachable
// would (Linux's arp_error_report does the same): a connect ends with
// EHOSTUNREACH at once rather than by its SYN retries.
func (p *Poller) linkFailed(pkt []byte) {
	h := wire.IPv4(pkt)
	if h.Protocol() != wire.ProtoTCP || len(pkt) < h.HeaderLen()+8 {
		return
	}
	t := pkt[h.HeaderLen():]
	local := netip.AddrPortFrom(h.Src(), binary.BigEndian.Uint16(t))
	remote := netip.AddrPortFrom(h.Dst(), binary.BigEndian.Uint16(t[2:]))
	p.tcp.Unreachable(p.now, local, remote, tcpSeq(t), wire.ICMPHostUnreachable, false)
}

// neighboursFailed ends the dials whose next hop the neighbour cache
// declared failed in this round's output (arp's NextFailure): their SYNs
// died in its queue.
func (p *Poller) neighboursFailed() {
	for hop, ok := p.arp.NextFailure(); ok; hop, ok = p.arp.NextFailure() {
		p.tcp.NeighbourFailed(p.now, func(dst netip.Addr) bool {
			next, err := p.ip.Route(dst)
			return err == nil && next == hop
		})
	}
}

// unreachable answers d with an ICMP destination unreachable, if the ip
// layer allows one (rate limit, RFC 1122 3.2.2 rules).
func (p *Poller) unreachable(d ip.Datagram, code uint8) {
	f, ok := p.txBuffer()
	if !ok {
		return
	}
	if n := p.ip.Unreachable(p.now, d, code, f.Data[wire.EthernetLen:]); n > 0 {
		p.sendIP(f, d.Src, n)
		return
	}
	p.spare = append(p.spare, f)
}

// output collects what each registered core has to send, in the order
// they were registered, into transmit frames: one loop for every core,
// each written at its layer and within the link MTU. One free frame goes
// from core to core until one writes into it, so a core with nothing to
// send costs no frame. When no frame is free output stops, and what is
// left waits for the next round, which Run then does at once.
func (p *Poller) output() {
	var f nic.Frame
	held := false
	end := wire.EthernetLen + p.ip.MTU()
	for _, c := range p.cores {
		off := c.layer.Offset()
		for {
			if !held {
				if f, held = p.txBuffer(); !held {
					p.more = true
					return
				}
			}
			b := f.Data[off:min(end, len(f.Data))]
			out, ok := c.core.Output(p.now, b)
			if !ok {
				break
			}
			if out.Len > len(b) {
				if !p.outputBig(c, out.Len) {
					break
				}
				continue
			}
			held = false
			p.send(f, c.layer, out)
		}
	}
	if held {
		p.spare = append(p.spare, f)
	}
}

// outputBig has c write its next packet, which needs need bytes at c's
// layer, whole into p.big, then sends it in fragments. It returns false
// when the packet cannot go even so (a link frame longer than the MTU,
// or more than an IPv4 datagram holds): c broke the contract, and its
// output waits rather than spin.
func (p *Poller) outputBig(c registered, need int) bool {
	off := c.layer.Offset() - wire.EthernetLen // p.big starts at the IPv4 header
	if c.layer == wire.LayerLink || off+need > maxIPv4Packet {
		return false
	}
	if p.big == nil {
		p.big = make([]byte, maxIPv4Packet)
	}
	out, ok := c.core.Output(p.now, p.big[off:])
	switch {
	case !ok:
		return true
	case out.Len > len(p.big)-off:
		return false
	}
	if pkt, ok := p.finishIP(p.big, c.layer, out); ok {
		p.sendFragments(pkt, out.Dst, p.ip.PathMTU(p.now, out.Dst))
	}
	return true
}

// maxIPv4Packet is the longest IPv4 datagram (RFC 791).
const maxIPv4Packet = 65535

// send sends the packet out describes, which a core wrote into f at
// layer: a link frame as it is, an IPv4 packet to its next hop, whole or,
// without DF and longer than the path MTU (one learnt from ICMP, below
// the link's), in fragments.
func (p *Poller) send(f nic.Frame, layer wire.Layer, out wire.Out) {
	if layer == wire.LayerLink {
		p.queue(f, out.DstMAC[:], out.EtherType, wire.EthernetLen+out.Len)
		return
	}
	pkt, ok := p.finishIP(f.Data[wire.EthernetLen:], layer, out)
	if !ok {
		p.spare = append(p.spare, f)
		return
	}
	if !wire.IPv4(pkt).DontFragment() {
		if mtu := p.ip.PathMTU(p.now, out.Dst); len(pkt) > mtu {
			p.sendFragments(pkt, out.Dst, mtu)
			p.spare = append(p.spare, f)
			return
		}
	}
	p.sendIP(f, out.Dst, len(pkt))
}

// finishIP returns the IPv4 packet a core wrote into b (from the IPv4
// header on) at layer, writing its header in front of a transport
// payload; false, counted, if the header cannot be written. A packet
// lost so is lost to its peer: UDP's datagram is dropped, TCP's
// retransmission covers its segment.
func (p *Poller) finishIP(b []byte, layer wire.Layer, out wire.Out) ([]byte, bool) {
	if layer == wire.LayerNetwork {
		return b[:out.Len], true
	}
	var src netip.Addr
	if out.Src != [4]byte{} {
		src = netip.AddrFrom4(out.Src)
	}
	if _, err := p.ip.WriteHeader(b, src, out.Dst, out.Proto, out.Len); err != nil {
		p.stats.TxNoRoute++
		return nil, false
	}
	return b[:ip.HeaderLen+out.Len], true
}

// sendFragments sends pkt, a whole IPv4 datagram outside the transmit
// frames, to dst in fragments that fit mtu (whole if it carries DF). Each
// fragment is a packet of its own to sendIP, so those that wait for the
// neighbour wait in its queue, within its bounds. A fragment short of a
// transmit buffer is lost, and the rest with it: the datagram could not
// be reassembled anyway. Without a route to dst nothing is sent, counted
// once.
func (p *Poller) sendFragments(pkt []byte, dst netip.Addr, mtu int) {
	if p.ip.Local(dst) {
		p.loopback(pkt)
		return
	}
	if _, err := p.ip.Route(dst); err != nil {
		p.stats.TxNoRoute++
		return
	}
	for i := range ip.Fragments(pkt, mtu) {
		f, ok := p.txBuffer()
		if !ok {
			return
		}
		n := p.ip.WriteFragment(f.Data[wire.EthernetLen:], pkt, mtu, i)
		p.sendIP(f, dst, n)
	}
}

// sendIP sends the IPv4 packet of n bytes that f holds after its Ethernet
// header towards dst: to dst's next hop, once the neighbour cache knows
// its MAC. A packet waiting for resolution is the cache's copy, so f is
// free again either way.
func (p *Poller) sendIP(f nic.Frame, dst netip.Addr, n int) {
	if p.ip.Local(dst) {
		p.loopback(f.Data[wire.EthernetLen : wire.EthernetLen+n])
		p.spare = append(p.spare, f)
		return
	}
	hop, err := p.ip.Route(dst)
	if err != nil {
		p.stats.TxNoRoute++
		p.spare = append(p.spare, f)
		return
	}
	mac, verdict := p.arp.Resolve(p.now, hop, f.Data[wire.EthernetLen:wire.EthernetLen+n])
	if verdict != arp.Send {
		if verdict != arp.Queued {
			p.stats.TxUnresolved++
		}
		if verdict == arp.Unreachable {
			p.linkFailed(f.Data[wire.EthernetLen : wire.EthernetLen+n])
		}
		p.spare = append(p.spare, f)
		return
	}
	p.queue(f, mac, wire.EtherTypeIPv4, wire.EthernetLen+n)
}

// queue finishes frame f of n bytes with its Ethernet header and puts it
// in the transmit batch, sending the batch when it is full.
func (p *Poller) queue(f nic.Frame, dst net.HardwareAddr, typ uint16, n int) {
	wire.Ethernet(f.Data).Encode(dst, p.mac, typ)
	// IEEE 802.3's 60-byte minimum: pad with zeros, not with whatever the
	// buffer held before.
	padded := wire.PadLen(n)
	clear(f.Data[n:padded])
	f.Data = f.Data[:padded]
	p.tx[p.txn] = f
	p.txn++
	p.stats.TxFrames++
	if p.txn == len(p.tx) {
		if err := p.flush(); err != nil {
			p.stats.TxErrors++
		}
	}
}

// txBuffer returns a free transmit buffer, at full length.
func (p *Poller) txBuffer() (nic.Frame, bool) {
	if len(p.spare) == 0 {
		n := p.link.Alloc(p.spare[:cap(p.spare)])
		p.spare = p.spare[:n]
		if n == 0 {
			p.stats.TxNoBuffer++
			return nic.Frame{}, false
		}
	}
	f := p.spare[len(p.spare)-1]
	p.spare = p.spare[:len(p.spare)-1]
	f.Data = f.Data[:cap(f.Data)]
	return f, true
}

// flush transmits the batch. Frames the link could not take are dropped
// (given back) and counted: a full TX ring means the link is saturated.
// A link that is down for now is counted, not a failure: the stack and its
// connections outlive a flap, as the kernel's do.
func (p *Poller) flush() error {
	if p.txn == 0 {
		return nil
	}
	p.tapFrames(Out, p.tx[:p.txn])
	n, err := p.link.Transmit(p.tx[:p.txn])
	if n < p.txn {
		p.stats.TxErrors += uint64(p.txn - n)
		p.link.Release(p.tx[n:p.txn])
	}
	p.txn = 0
	switch {
	case errors.Is(err, nic.ErrLinkDown):
		p.stats.TxLinkDown += uint64(n)
	case err != nil:
		return fmt.Errorf("fastpath: transmit: %w", err)
	}
	return nil
}

// Close gives the transmit buffers the poller holds back to the link. It
// does not close the link.
func (p *Poller) Close() {
	p.flush()
	p.link.Release(p.spare)
	p.spare = p.spare[:0]
}
