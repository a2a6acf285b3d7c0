package udp

import "net/netip"

// Stream is the app's side of an endpoint's queues: the receive queue it
// drains and the send queue it fills, each shared lock-free with the
// poller (one goroutine on each side of each queue). Get it on the
// poller's goroutine with Endpoint.Stream; then one app goroutine reads
// and one writes, without touching the Endpoint, and tells the poller
// when it queued datagrams (AppActivity on the poller's side).
type Stream struct {
	rcv, snd   *queue
	maxPayload int
	ping       bool      // Config.Ping
	e          *Endpoint // for the refused flag, an atomic
}

// Stream returns the endpoint's queues for the app, allocating them now
// so that the two goroutines never race on a first push. Call it on the
// poller's goroutine.
func (e *Endpoint) Stream() Stream {
	e.rcv.alloc()
	e.snd.alloc()
	return Stream{e.rcv, e.snd, e.t.cfg.maxPayload(), e.t.cfg.Ping, e}
}

// Recv moves the oldest received datagram into p, cutting what does not
// fit as a UDP socket does, and returns the bytes copied, its source, and
// whether it was cut (Linux's MSG_TRUNC); ok is false when none is queued.
func (s Stream) Recv(p []byte) (n int, src netip.AddrPort, truncated, ok bool) {
	if s.rcv.empty() {
		return 0, netip.AddrPort{}, false, false
	}
	src, _ = s.rcv.front()
	n, size := s.rcv.copyFront(p)
	s.rcv.pop()
	return n, src, n < size, true
}

// Send queues p as one datagram to dst: ErrMessageTooLong over 65,507
// bytes (see Config.DontFragment), ErrInvalidAddr, ErrNotEcho (Config.Ping),
// or ErrWouldBlock when the send queue is full.
func (s Stream) Send(p []byte, dst netip.AddrPort) error {
	dst, ok := checkDst(dst, s.ping)
	switch {
	case !ok:
		return ErrInvalidAddr
	case s.e.local.Addr().IsLoopback() && !dst.Addr().IsLoopback():
		// Linux's route lookup refuses a loopback source towards the
		// link (EINVAL); the poller would have dropped it unsaid.
		return ErrInvalidAddr
	case s.ping && !isEcho(p):
		return ErrNotEcho
	case len(p) > s.maxPayload:
		return ErrMessageTooLong
	case !s.snd.fits(len(p)):
		// Ask the poller to say when the queue drains (NextNews).
		s.e.sendWaiting.Store(true)
		return ErrWouldBlock
	}
	s.snd.push(dst, p)
	return nil
}

// SetRecvBuffer and SetSendBuffer bound the receive and send queues at
// bytes of payload, as SO_RCVBUF and SO_SNDBUF do (not doubled): the
// configured queue sizes (Config.RecvQueueBytes, SendQueueBytes) bound
// them in turn, as net.core.rmem_max and wmem_max do. An empty queue
// still takes one datagram larger than the bound, as on Linux. Either
// side may call them.
func (s Stream) SetRecvBuffer(bytes int) { s.rcv.setLimit(bytes) }

// SetSendBuffer bounds the send queue; see SetRecvBuffer.
func (s Stream) SetSendBuffer(bytes int) { s.snd.setLimit(bytes) }

// Fits reports whether a datagram of n bytes fits the send queue now.
func (s Stream) Fits(n int) bool { return s.snd.fits(n) }

// Ready reports whether Recv has a datagram or Refused an error.
func (s Stream) Ready() bool { return !s.rcv.empty() || s.e.refused.Load() }

// Refused reports, once, that an ICMP port unreachable came back for a
// connected endpoint (ECONNREFUSED for the next read or write).
func (s Stream) Refused() bool { return s.e.refused.Swap(false) }

// AppActivity tells the endpoint, on the poller's goroutine, that its app
// queued datagrams to send.
func (e *Endpoint) AppActivity() {
	if !e.snd.empty() {
		e.t.ready.add(e)
	}
}

// notify queues e for NextNews, if an app layer owns it.
func (t *Table) notify(e *Endpoint) {
	if e.Owner != nil && !e.inNews {
		e.inNews = true
		t.news = append(t.news, e)
	}
}

// Notifier is an app layer's handle on an endpoint (its Owner). The
// owner of the table calls Notify after a round in which the endpoint had
// news (NextNews: datagrams received, an ICMP error, room in a send queue
// a writer found full). Notify must be quick and must not block; it
// reports whether it woke a goroutine.
type Notifier interface {
	Notify() bool
}

// NextNews returns an endpoint that received datagrams (or an error)
// since it was last returned; only endpoints with an Owner are reported.
func (t *Table) NextNews() (*Endpoint, bool) {
	n := len(t.news)
	if n == 0 {
		return nil, false
	}
	e := t.news[n-1]
	t.news[n-1] = nil
	t.news = t.news[:n-1]
	e.inNews = false
	return e, true
}
