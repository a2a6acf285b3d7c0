package tcp

import "sync/atomic"

// Stream is the app's side of a connection's buffers: the send ring the
// app fills and the receive ring it drains, each shared lock-free with the
// poller that runs the connection (one goroutine on each side of each
// ring). Get it on the poller's goroutine with Conn.Stream; then the app's
// goroutine uses it without touching the Conn, and tells the poller when
// it wrote (so it sends) or read (so it may open the window).
type Stream struct {
	snd *ring
	rcv *recvBuffer
}

// Stream returns the connection's buffers for the app. Call it on the
// poller's goroutine; the Stream stays valid after the connection ends.
func (c *Conn) Stream() Stream { return Stream{c.snd, c.rcv} }

// Write copies as much of p as the send buffer has room for.
func (s Stream) Write(p []byte) int { return s.snd.Write(p) }

// Read moves up to len(p) received bytes into p.
func (s Stream) Read(p []byte) int { return s.rcv.Read(p) }

// WriteSpace returns the send buffer's room as up to two slices (the
// second is where it wraps to the buffer's start), for the app to fill
// a prefix of, a first, with no copy of its own (a read from a file or
// socket straight into the buffer), and publish with Commit. The slices
// are the app's alone until Commit; call WriteSpace again after it.
func (s Stream) WriteSpace() (a, b []byte) { return s.snd.writeSpace() }

// Commit publishes the first n bytes written into the last WriteSpace's
// slices, as Write would, and returns how many it published: all n,
// unless the poller shrank the buffer meanwhile so that they no longer
// fit. The rest are still in the slices, for the app to Write when
// there is room.
func (s Stream) Commit(n int) int { return s.snd.commit(n) }

// ReadSpace returns the received bytes waiting as up to two slices (the
// second is where they wrap to the buffer's start), for the app to use
// in place (a write to a file or socket straight from the buffer) and
// then drop with Consume. They stay valid and unchanged until Consume.
func (s Stream) ReadSpace() (a, b []byte) { return s.rcv.readSpace() }

// Consume drops the first n bytes of the last ReadSpace's (n at most
// their length), as Read would after copying them.
func (s Stream) Consume(n int) { s.rcv.Discard(n) }

// Readable is the number of received bytes waiting.
func (s Stream) Readable() int { return s.rcv.Len() }

// Writable is the room in the send buffer.
func (s Stream) Writable() int { return s.snd.Free() }

// Status is what the app may know of a connection, published by the
// poller each time the connection has news (see Table.NextReady).
type Status struct {
	State State
	// EOF: the peer's FIN came; once Readable is 0, reads are over.
	EOF bool
	// Err is why the connection ended badly, if it did.
	Err error
}

// statusErrs are the errors a Status carries, by index.
var statusErrs = [...]error{nil, ErrRefused, ErrReset, ErrTimeout, ErrAborted,
	ErrHostUnreachable, ErrNetUnreachable, ErrProtoUnreachable, ErrHostDown, ErrHostIsolated, ErrSourceRoute}

// published is a Status packed for an atomic: state in bits 0–3, EOF in
// bit 4, the error's index from bit 5.
type published struct{ v atomic.Uint32 }

func (p *published) store(c *Conn) {
	v := uint32(c.state)
	if c.finReceived {
		v |= 1 << 4
	}
	for i, err := range statusErrs {
		if err != nil && err == c.err {
			v |= uint32(i) << 5
		}
	}
	p.v.Store(v)
}

// Status returns the connection's status as last published. Any goroutine
// may call it.
func (c *Conn) Status() Status {
	v := c.pub.v.Load()
	return Status{State: State(v & 15), EOF: v&(1<<4) != 0, Err: statusErrs[v>>5]}
}

// AppActivity tells c, on the poller's goroutine, that its app wrote into
// the Stream (data to send) or read from it (room that may open the
// window).
func (c *Conn) AppActivity() {
	if c.state == Closed {
		return
	}
	if c.snd.Len() > 0 {
		c.t.wantOutput(c)
	}
	c.rcvSpaceAdjust()
	c.windowOpened()
}

// notifyListener queues l for NextAcceptable.
func (t *Table) notifyListener(l *Listener) {
	if !l.inReady {
		l.inReady = true
		t.readyListeners = append(t.readyListeners, l)
	}
}

// NextAcceptable returns a listener that queued a connection for Accept
// since it was last returned.
func (t *Table) NextAcceptable() (*Listener, bool) {
	n := len(t.readyListeners)
	if n == 0 {
		return nil, false
	}
	l := t.readyListeners[n-1]
	t.readyListeners[n-1] = nil
	t.readyListeners = t.readyListeners[:n-1]
	l.inReady = false
	return l, true
}

// ReadCap is the receive ring's room when empty.
func (s Stream) ReadCap() int { return s.rcv.Cap() }

// Notifier is an app layer's handle on a connection or a listener (their
// Owner). The owner of the table calls Notify after a round in which the
// connection had news (NextReady: data, room, the end) or the listener a
// connection to accept (NextAcceptable). Notify must be quick and must
// not block (ring a doorbell, queue the connection for an inline
// service); it reports whether it woke a goroutine.
type Notifier interface {
	Notify() bool
}
