package udp

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// Endpoint is a bound UDP endpoint, shaped like net.PacketConn over
// netip.AddrPort. Its methods never block: where a socket would wait they
// return ErrWouldBlock. Only the table's owner calls them; an app
// goroutine uses the Stream.
type Endpoint struct {
	t      *Table
	local  netip.AddrPort // address 0.0.0.0 for the wildcard
	remote netip.AddrPort // valid once connected
	shared bool
	closed bool
	err    error // pending asynchronous error, returned once

	rcv *queue // Input produces, ReadFrom (or the Stream) consumes
	snd *queue // WriteTo (or the Stream) produces, Output consumes

	// Owner is the app layer's handle, which the owner of the table
	// notifies when NextNews returns the endpoint.
	Owner       Notifier
	inNews      bool
	refused     atomic.Bool // an ICMP port unreachable for the Stream's reader
	sendWaiting atomic.Bool // the Stream's writer found the send queue full

	index     int       // in the table's bound
	next      *Endpoint // same port, older
	nextReady *Endpoint // in the table's ready list
	isReady   bool
}

// LocalAddr returns the bound address and port; the address is 0.0.0.0
// for an endpoint bound to the wildcard.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.local }

// RemoteAddr returns the connected peer, or the zero AddrPort.
func (e *Endpoint) RemoteAddr() netip.AddrPort { return e.remote }

// Queued is the payload bytes waiting in the receive queue (for the app)
// and the send queue (for Output): netstat's Recv-Q and Send-Q.
func (e *Endpoint) Queued() (rcv, snd int) { return e.rcv.bytes(), e.snd.bytes() }

// Connect sets the default destination to remote. From then on only
// datagrams from remote are delivered, and an ICMP port unreachable from it
// fails the next read or write with ErrConnRefused. Connecting again
// changes the peer; datagrams queued already stay.
func (e *Endpoint) Connect(remote netip.AddrPort) error {
	if e.closed {
		return net.ErrClosed
	}
	remote, ok := checkDst(remote, e.t.cfg.Ping)
	if !ok {
		return ErrInvalidAddr
	}
	e.remote = remote
	return nil
}

// checkDst returns dst with a 4-in-6 address unmapped, and whether it is a
// usable IPv4 destination: with a port, unless ping says ports mean
// nothing (an echo request has none).
func checkDst(dst netip.AddrPort, ping bool) (netip.AddrPort, bool) {
	a := dst.Addr().Unmap()
	return netip.AddrPortFrom(a, dst.Port()), a.Is4() && (ping || dst.Port() != 0)
}

// ReadFrom copies the oldest received datagram into p and returns its
// length and source. Like a UDP socket, it discards what does not fit in p.
// It returns a pending ErrConnRefused first, and ErrWouldBlock when no
// datagram is queued.
func (e *Endpoint) ReadFrom(p []byte) (int, netip.AddrPort, error) {
	if err := e.pendingErr(); err != nil {
		return 0, netip.AddrPort{}, err
	}
	if e.rcv.empty() {
		return 0, netip.AddrPort{}, ErrWouldBlock
	}
	src, _ := e.rcv.front()
	n, _ := e.rcv.copyFront(p)
	e.rcv.pop()
	return n, src, nil
}

// WriteTo queues p as one datagram to dst and returns len(p). The poller
// sends it from the table's output (Table.Output). Errors:
// ErrMessageTooLong over 65,507 bytes (see Config.DontFragment),
// ErrInvalidAddr, ErrWouldBlock when the send queue is full, a pending
// ErrConnRefused, net.ErrClosed.
func (e *Endpoint) WriteTo(p []byte, dst netip.AddrPort) (int, error) {
	if err := e.pendingErr(); err != nil {
		return 0, err
	}
	dst, ok := checkDst(dst, e.t.cfg.Ping)
	if !ok {
		return 0, ErrInvalidAddr
	}
	if e.t.cfg.Ping && !isEcho(p) {
		return 0, ErrNotEcho
	}
	// As Linux's udp_sendmsg: EMSGSIZE past the largest IPv4 datagram,
	// or past the MTU when DF is asked for (IP_PMTUDISC_DO).
	if len(p) > e.t.cfg.maxPayload() {
		return 0, ErrMessageTooLong
	}
	if !e.snd.fits(len(p)) {
		e.t.stats.SndbufErrors++
		return 0, ErrWouldBlock
	}
	e.snd.push(dst, p)
	e.t.ready.add(e)
	return len(p), nil
}

// Write queues p to the connected peer, as WriteTo does; ErrNoDestination
// if the endpoint is not connected.
func (e *Endpoint) Write(p []byte) (int, error) {
	if !e.closed && !e.remote.IsValid() {
		return 0, ErrNoDestination
	}
	return e.WriteTo(p, e.remote)
}

// pendingErr returns net.ErrClosed after Close, else the pending
// asynchronous error once, clearing it as Linux's sock_error does.
func (e *Endpoint) pendingErr() error {
	if e.closed {
		return net.ErrClosed
	}
	err := e.err
	e.err = nil
	return err
}

// Close unbinds the endpoint and discards its receive queue; the port is
// free again at once. Datagrams already queued for sending still go out,
// as they would from a closed Linux socket. Later calls return
// net.ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed {
		return net.ErrClosed
	}
	e.closed = true
	e.t.unlink(e)
	e.rcv = &queue{}
	return nil
}
