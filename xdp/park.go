package xdp

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Parker lets the goroutine that polls a socket sleep until the RX ring
// has frames, a deadline passes, or another goroutine calls Wake. It
// sleeps in the Go netpoller: the goroutine parks without holding its OS
// thread or its P, unlike Wait's poll(2), so app goroutines run meanwhile
// on the same P (DESIGN.md's placement measurements).
//
// The protocol that loses no wakeup: the poller calls Arm with its next
// timer, then publishes that it sleeps (a flag others read), re-checks
// all its work, and only then calls Park; a waker clears the flag and
// calls Wake. Wake moves the deadline to the past, so a Park after it
// returns at once.
type Parker struct {
	f    *os.File
	rc   syscall.RawConn
	sock *Socket
}

// NewParker returns a parker for s. It holds a duplicate of the socket's
// descriptor, set non-blocking, registered with the netpoller.
func (s *Socket) NewParker() (*Parker, error) {
	fd, err := unix.Dup(s.fd)
	if err != nil {
		return nil, fmt.Errorf("xdp: parker: dup: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xdp: parker: %w", err)
	}
	f := os.NewFile(uintptr(fd), "xsk")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("xdp: parker: %w", err)
	}
	return &Parker{f: f, rc: rc, sock: s}, nil
}

// Arm sets when Park returns at the latest; the zero time means never.
func (p *Parker) Arm(deadline time.Time) error { return p.f.SetReadDeadline(deadline) }

// Park returns when the RX ring has frames, the armed deadline passed, or
// Wake was called.
func (p *Parker) Park() error {
	err := p.rc.Read(func(uintptr) bool { return p.sock.RX.Available(1) > 0 })
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("xdp: park: %w", err)
	}
	return nil
}

// Wake makes the current or next Park return at once. Any goroutine may
// call it.
func (p *Parker) Wake() { p.f.SetReadDeadline(time.Unix(1, 0)) }

// Close releases the duplicate descriptor.
func (p *Parker) Close() error { return p.f.Close() }
