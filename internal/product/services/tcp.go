package services

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/tcp"
)

// ChargenPort is RFC 864's character generator.
const ChargenPort = 19

// TCPServices serves echo, discard and chargen over TCP on one poller, any
// number of connections at once. Listen it on the poller's TCP table and
// call Serve from the poller's OnRound hook.
//
// Serve visits only the connections the poller reported news for (each
// connection's Owner is its serviceConn, a tcp.Notifier), never every
// open one: walking 20,000 idle connections each round made every ping
// wait 2 ms.
type TCPServices struct {
	echo, discard, chargen *tcp.Listener
	ready                  []*serviceConn // connections with news since the last Serve
	buf                    [64 << 10]byte
	stats                  struct{ accepted, active, echoed, discarded, generated atomic.Int64 }
}

type serviceKind uint8

const (
	echoService serviceKind = iota
	discardService
	chargenService
)

type serviceConn struct {
	*tcp.Conn
	s       *TCPServices
	kind    serviceKind
	pos     int  // chargen's place in its pattern
	inReady bool // in s.ready
}

// Notify queues c for the next Serve. The poller calls it after a round in
// which c had news (data, room, the peer's FIN, the end).
func (c *serviceConn) Notify() bool {
	if !c.inReady {
		c.inReady = true
		c.s.ready = append(c.s.ready, c)
	}
	return false // no goroutine to wake: Serve runs on the poller
}

// TCPServiceStats count what the services did; safe to read from any
// goroutine.
type TCPServiceStats struct {
	Accepted, Active             int64 // connections accepted, and open now
	Echoed, Discarded, Generated int64 // bytes
}

// Listen listens on the three ports of every address of t.
func (s *TCPServices) Listen(t *tcp.Table) (err error) {
	for _, l := range []struct {
		ln   **tcp.Listener
		port uint16
	}{{&s.echo, EchoPort}, {&s.discard, DiscardPort}, {&s.chargen, ChargenPort}} {
		if *l.ln, err = t.Listen(netip.AddrPortFrom(netip.Addr{}, l.port), 128); err != nil {
			return fmt.Errorf("listen on TCP port %d: %w", l.port, err)
		}
	}
	return nil
}

// Serve accepts new connections and moves the data of those with news.
func (s *TCPServices) Serve(time.Duration) {
	s.accept(s.echo, echoService)
	s.accept(s.discard, discardService)
	s.accept(s.chargen, chargenService)
	// Closing a connection queues no news for a service (its Owner goes
	// first), so the list does not grow under the loop.
	for i, c := range s.ready {
		s.ready[i] = nil
		c.inReady = false
		if !s.serve(c) {
			c.Owner = nil
			c.Close()
			s.stats.active.Add(-1)
		}
	}
	s.ready = s.ready[:0]
}

func (s *TCPServices) accept(l *tcp.Listener, kind serviceKind) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.stats.accepted.Add(1)
		s.stats.active.Add(1)
		c.SetNagle(false)
		sc := &serviceConn{Conn: c, s: s, kind: kind}
		c.Owner = sc
		// What came before the accept brought no news: serve it now.
		sc.Notify()
	}
}

// serve moves c's data and reports whether it stays open: until the
// client's FIN (echo and discard answer with theirs) or an error.
func (s *TCPServices) serve(c *serviceConn) bool {
	for {
		n := len(s.buf)
		if c.kind == echoService {
			// Echo no more than fits: the rest waits in the receive
			// buffer, whose window then holds the client back.
			n = min(n, c.Writable())
		}
		if n == 0 {
			return true
		}
		n, err := c.Read(s.buf[:n])
		switch c.kind {
		case echoService:
			c.Write(s.buf[:n])
			s.stats.echoed.Add(int64(n))
		default:
			s.stats.discarded.Add(int64(n))
		}
		switch {
		case errors.Is(err, tcp.ErrWouldBlock):
			if c.kind == chargenService {
				s.generate(c)
			}
			return true
		case err == io.EOF:
			return false
		case err != nil:
			return false
		}
	}
}

// generate fills c's send buffer with RFC 864's pattern: lines of 72
// printable ASCII characters, each starting one character further on.
func (s *TCPServices) generate(c *serviceConn) {
	for c.Writable() > 0 {
		n, err := c.Write(chargenCycle[c.pos:])
		if err != nil {
			return
		}
		s.stats.generated.Add(int64(n))
		c.pos = (c.pos + n) % len(chargenCycle)
	}
}

// chargenCycle is one period of the chargen stream: 95 lines, one per
// starting character.
var chargenCycle = func() []byte {
	const printable, line = 95, 72
	b := make([]byte, 0, printable*(line+2))
	for i := range printable {
		for j := range line {
			b = append(b, byte(' '+(i+j)%printable))
		}
		b = append(b, '\r', '\n')
	}
	return b
}()

// ChargenCycle returns a copy of one period of the chargen stream (7030
// bytes), which a client can check the stream against.
func ChargenCycle() []byte { return slices.Clone(chargenCycle) }

// Stats returns the counters.
func (s *TCPServices) Stats() TCPServiceStats {
	return TCPServiceStats{
		Accepted: s.stats.accepted.Load(), Active: s.stats.active.Load(),
		Echoed: s.stats.echoed.Load(), Discarded: s.stats.discarded.Load(), Generated: s.stats.generated.Load(),
	}
}
