package sockapi

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// The io fast paths: io.Copy to or from a Conn moves bytes between the
// connection's rings and the other side with no buffer of its own. A
// copy between two connections of the stack (a proxy) is one copy, ring
// to ring: io.Copy(a, b) calls b.WriteTo(a), which hands a the bytes of
// b's receive ring in place, and a.Write copies them into a's send ring.

var (
	_ io.ReaderFrom = (*Conn)(nil)
	_ io.WriterTo   = (*Conn)(nil)
)

// A count out of a reader's or writer's range would move a ring's
// indexes past the bytes it holds: refused, as io.Copy refuses it.
var (
	errInvalidRead  = errors.New("sockapi: invalid Read result")
	errInvalidWrite = errors.New("sockapi: invalid Write result")
)

// ReadFrom writes what it reads from r until io.EOF (not an error) or an
// error, as io.Copy does, reading from r straight into the room of the
// send ring. It blocks as Write does, the write deadline included (also
// between r's reads), and reports the connection's errors as Write
// does; r's errors come back as they are. A Close while r's Read blocks
// returns at once; the FIN (or reset) then follows when that Read
// returns, with what it read dropped.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var total int64
	for {
		if c.wshut.Load() { // also a CloseWrite meanwhile
			return total, c.opError("write", syscall.EPIPE)
		}
		if isClosed(c.wdl.wait()) {
			return total, c.opError("write", os.ErrDeadlineExceeded)
		}
		if err := c.writeStatus(); err != nil {
			return total, err
		}
		a, _ := c.st.WriteSpace() // the wrapped part, if any, comes next time
		if len(a) == 0 {
			if err := c.awaitRoom(); err != nil {
				return total, err
			}
			continue
		}
		if !c.lend() {
			return total, c.opError("write", net.ErrClosed)
		}
		n, rerr := r.Read(a)
		if !c.unlend() {
			return total, c.opError("write", net.ErrClosed)
		}
		if n < 0 || n > len(a) {
			return total, errInvalidRead
		}
		if n > 0 {
			m := c.st.Commit(n)
			c.p.Kick(&c.kick)
			if m < n { // the poller shrank the ring meanwhile
				k, err := c.write(a[m:n])
				total += int64(m + k)
				if err != nil {
					return total, err
				}
			} else {
				total += int64(n)
			}
		}
		switch {
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// WriteTo writes what the connection receives to w until the peer's FIN
// or an error, as io.Copy does, handing w the bytes of the receive ring
// in place. It blocks as Read does, the read deadline included (also
// between w's writes), and reports the connection's errors as Read
// does; w's errors come back as they are. A Close while w's Write
// blocks returns at once; the FIN (or reset) then follows when that
// Write returns.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var total int64
	for {
		if isClosed(c.rdl.wait()) {
			return total, c.opError("read", os.ErrDeadlineExceeded)
		}
		if c.closed.Load() {
			return total, c.opError("read", net.ErrClosed)
		}
		avail, err := c.readable()
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
		a, _ := c.st.ReadSpace() // the wrapped part, if any, comes next time
		if !c.lend() {
			return total, c.opError("read", net.ErrClosed)
		}
		n, werr := w.Write(a)
		if n < 0 || n > len(a) {
			n, werr = 0, errInvalidWrite
		}
		if !c.unlend() {
			return total + int64(n), c.opError("read", net.ErrClosed)
		}
		c.st.Consume(n)
		c.consumed(avail)
		total += int64(n)
		switch {
		case werr != nil:
			return total, werr
		case n < len(a):
			return total, io.ErrShortWrite
		}
	}
}

// CloseRead shuts the read side, as shutdown(SHUT_RD) does on Linux:
// Reads return the data received already, then io.EOF at once instead
// of waiting, and a Read blocked now returns. Nothing goes to the peer
// and the connection goes on acknowledging what it sends, as Linux's
// does: the window closes as the receive buffer fills, and a later Read
// still returns those bytes. Close with bytes unread resets the
// connection, as ever.
func (c *Conn) CloseRead() error {
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	c.rshut.Store(true)
	c.bells.r.ring()
	return nil
}
