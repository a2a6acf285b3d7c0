package udp

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Output writes the next queued datagram, header, payload and checksum,
// into b (typically a transmit frame right after the IPv4 header) and
// describes it, at wire.LayerTransport; false when no endpoint has one.
// Endpoints are served round robin, one datagram each. A datagram longer
// than b (at most 65,515 bytes, or MTU − 28 of payload with
// Config.DontFragment) stays queued, and Out.Len says the room it needs:
// the poller asks again with a buffer that large and cuts the datagram
// into fragments. The checksum covers the endpoint's address as the
// source, or for one bound to the wildcard wire.SourceFor's choice of
// Config.Addrs (the first; 127.0.0.1 to 127/8), and Out.Src says which,
// for the ip layer to write. UDP has no timers: now is the contract's, unused.
func (t *Table) Output(now time.Duration, b []byte) (wire.Out, bool) {
	e := t.ready.head
	if e == nil {
		return wire.Out{}, false
	}
	dst, n := e.snd.front()
	src := e.local.Addr()
	if src.IsUnspecified() {
		if a, ok := wire.SourceFor(t.cfg.Addrs, dst.Addr()); ok {
			src = a
		}
	}
	if t.cfg.Ping {
		out := wire.Out{Len: n, Dst: dst.Addr(), Proto: wire.ProtoICMP, Src: src.As4()}
		if out.Len <= len(b) {
			e.snd.copyFront(b[:n])
			echoFromPort(b[:n], e.local.Port())
			t.consume(e)
			t.stats.OutDatagrams++
		}
		return out, true
	}
	out := wire.Out{Len: wire.UDPHeaderLen + n, Dst: dst.Addr(), Proto: wire.ProtoUDP, Src: src.As4()}
	if out.Len > len(b) {
		return out, true
	}
	e.snd.copyFront(b[wire.UDPHeaderLen : wire.UDPHeaderLen+n])
	// RFC 1122 section 4.1.3.4: checksums MUST default to on. Encode
	// sends a computed zero as 0xffff (RFC 768).
	wire.UDPFields{SrcPort: e.local.Port(), DstPort: dst.Port()}.Encode(b, n, src, dst.Addr())
	t.consume(e)
	t.stats.OutDatagrams++
	return out, true
}

// Deadline reports no timer: UDP has none. It is there for the contract
// every core offers (wire.Out).
func (t *Table) Deadline() (time.Duration, bool) { return 0, false }

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
