package udp

import (
	"net/netip"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Outgoing describes the next datagram to send.
type Outgoing struct {
	// Src is the sending endpoint's address. Its address is 0.0.0.0 when
	// the endpoint is bound to the wildcard: the poller picks the source
	// address by route, as for any packet it sends.
	Src netip.AddrPort
	// Dst is the destination.
	Dst netip.AddrPort
	// Len is the UDP length, header and payload: the bytes EmitOutput
	// writes and the IPv4 payload length: at most 65,515, or MTU − 20
	// with Config.DontFragment. The poller fragments a datagram longer
	// than the path MTU.
	Len int
}

// NextOutput returns the next datagram to send without removing it; false
// when no endpoint has one. Endpoints are served round robin, one datagram
// each. The poller follows with EmitOutput, or DropOutput if it cannot
// send the datagram (no route, no neighbour).
func (t *Table) NextOutput() (Outgoing, bool) {
	e := t.ready.head
	if e == nil {
		return Outgoing{}, false
	}
	dst, n := e.snd.front()
	return Outgoing{Src: e.local, Dst: dst, Len: wire.UDPHeaderLen + n}, true
}

// EmitOutput writes the datagram NextOutput returned, header and payload,
// into b (its first Outgoing.Len bytes; typically a TX frame right after
// the IPv4 header), removes it from its queue and returns Outgoing.Len.
// src is the IPv4 source address the poller writes: the checksum covers it
// through the pseudo-header. It panics if nothing is queued or b is short.
func (t *Table) EmitOutput(b []byte, src netip.Addr) int {
	e := t.ready.head
	dst, n := e.snd.front()
	e.snd.copyFront(b[wire.UDPHeaderLen : wire.UDPHeaderLen+n])
	// RFC 1122 section 4.1.3.4: checksums MUST default to on. Encode
	// sends a computed zero as 0xffff (RFC 768).
	wire.UDPFields{SrcPort: e.local.Port(), DstPort: dst.Port()}.Encode(b, n, src, dst.Addr())
	t.consume(e)
	t.stats.OutDatagrams++
	return wire.UDPHeaderLen + n
}

// DropOutput discards the datagram NextOutput returned. Neither UDP
// counter counts it: the reason (no route, no neighbour) is the ip
// layer's to count. It panics if nothing is queued.
func (t *Table) DropOutput() { t.consume(t.ready.head) }

// consume pops e's oldest datagram and moves e to the back of the ready
// list, or off it when it has nothing more to send.
func (t *Table) consume(e *Endpoint) {
	e.snd.pop()
	if e.sendWaiting.Load() && e.sendWaiting.CompareAndSwap(true, false) {
		t.notify(e) // room for the app's writer
	}
	t.ready.popHead()
	if !e.snd.empty() {
		t.ready.add(e)
	}
}

// readyList is a FIFO of the endpoints with queued datagrams, linked
// through the endpoints, so that adding and removing allocate nothing.
type readyList struct {
	head, tail *Endpoint
}

// add appends e unless it is in the list already.
func (l *readyList) add(e *Endpoint) {
	if e.isReady {
		return
	}
	e.isReady = true
	if l.tail == nil {
		l.head = e
	} else {
		l.tail.nextReady = e
	}
	l.tail = e
}

// popHead removes the first endpoint.
func (l *readyList) popHead() {
	e := l.head
	l.head = e.nextReady
	if l.head == nil {
		l.tail = nil
	}
	e.nextReady, e.isReady = nil, false
}
