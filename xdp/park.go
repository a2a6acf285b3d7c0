package xdp

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Parker lets the goroutine that polls a socket sleep until the RX ring
// has frames, a deadline passes, or another goroutine calls Wake. It
// sleeps in the Go netpoller: the goroutine parks without holding its OS
// thread or its P, unlike Wait's poll(2), so app goroutines run meanwhile
// on the same P (docs/DESIGN.md's placement measurements).
//
// The socket is in the netpoller only while parked: a duplicate
// descriptor is registered for each Park and closed after. In copy mode
// polling an AF_XDP socket also transmits, so a socket left registered
// made the runtime's netpoll (from any thread) contend with the poller's
// own sendto for the socket lock (seen in profiles of bulk sends).
//
// The protocol that loses no wakeup: the poller calls Arm with its next
// timer, then publishes that it sleeps (a flag others read), re-checks
// all its work, and only then calls Park; a waker clears the flag and
// calls Wake, which makes the current or the next Park return at once.
type Parker struct {
	sock     *Socket
	mu       sync.Mutex
	f        *os.File // while parked
	deadline time.Time
	woken    bool
}

// NewParker returns a parker for s.
func (s *Socket) NewParker() *Parker { return &Parker{sock: s} }

// Arm sets when Park returns at the latest; the zero time means never.
func (p *Parker) Arm(deadline time.Time) error {
	p.mu.Lock()
	p.deadline, p.woken = deadline, false
	p.mu.Unlock()
	return nil
}

// Park returns when the RX ring has frames, the armed deadline passed, or
// Wake was called.
func (p *Parker) Park() error {
	p.mu.Lock()
	if p.woken {
		p.mu.Unlock()
		return nil
	}
	f, err := p.register()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.f = f
	p.mu.Unlock()
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Read(func(uintptr) bool { return p.sock.RX.Available(1) > 0 })
	}
	p.mu.Lock()
	p.f = nil
	p.mu.Unlock()
	f.Close()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("xdp: park: %w", err)
	}
	return nil
}

// register puts a non-blocking duplicate of the socket in the netpoller,
// with the armed deadline.
func (p *Parker) register() (*os.File, error) {
	fd, err := unix.Dup(p.sock.fd)
	if err != nil {
		return nil, fmt.Errorf("xdp: park: dup: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xdp: park: %w", err)
	}
	f := os.NewFile(uintptr(fd), "xsk")
	if err := f.SetReadDeadline(p.deadline); err != nil {
		f.Close()
		return nil, fmt.Errorf("xdp: park: %w", err)
	}
	return f, nil
}

// Wake makes the current or next Park return at once. Any goroutine may
// call it.
func (p *Parker) Wake() {
	p.mu.Lock()
	p.woken = true
	if p.f != nil {
		p.f.SetReadDeadline(time.Unix(1, 0))
	}
	p.mu.Unlock()
}
