package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// LinkWatch follows one network interface through the kernel's rtnetlink
// link messages, to learn when it is gone for good: deleted, moved to
// another namespace, or destroyed with the namespace of its veth peer.
// An AF_XDP socket cannot tell by itself: the kernel unbinds it and sets
// its error, but its poll then reports nothing at all (xsk_poll returns an
// empty mask for an unbound socket), so a poller parked on it sleeps on.
//
// The netlink socket sits in the Go netpoller: the goroutine that reads it
// costs no thread while the link is quiet, and Close ends it.
type LinkWatch struct {
	f       *os.File
	ifindex int32
	up      func() // called when the interface comes (back) up
	running int    // the last state seen: 0 unknown, 1 up, -1 down
	gone    chan struct{}
	goneOne sync.Once
	done    chan struct{} // closed when the reading goroutine returns
	closing sync.Once
}

// linkQuerySeq marks the RTM_GETLINK requests of a watch, to find their
// answers among the link messages.
const linkQuerySeq = 1

// WatchLink starts watching the interface ifindex of the caller's network
// namespace (the calling OS thread's, as for the sockets). If up is not
// nil, the watch's goroutine calls it each time the interface comes back
// up and running (administratively up, with carrier) after it was seen
// down.
func WatchLink(ifindex int, up func()) (*LinkWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("xdp: link watch: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xdp: link watch: bind: %w", err)
	}
	w := &LinkWatch{
		f: os.NewFile(uintptr(fd), "rtnetlink"), ifindex: int32(ifindex), up: up,
		gone: make(chan struct{}), done: make(chan struct{}),
	}
	// Subscribed first, asked second: an interface removed before the
	// subscription is reported by the answer (ENODEV).
	if err := w.query(); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("xdp: link watch: %w", err)
	}
	go w.run()
	return w, nil
}

// Gone is closed once the interface has left the namespace. Sockets bound
// to it are unbound for good: they never receive or send again.
func (w *LinkWatch) Gone() <-chan struct{} { return w.gone }

// Close stops the watch and waits for its goroutine.
func (w *LinkWatch) Close() error {
	var err error
	w.closing.Do(func() {
		err = w.f.Close()
		<-w.done
	})
	return err
}

// query asks the kernel for the interface (RTM_GETLINK); the answer is a
// link message, or an error message when it no longer exists.
func (w *LinkWatch) query() error {
	var req [unix.SizeofNlMsghdr + unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], linkQuerySeq)
	req[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(req[unix.SizeofNlMsghdr+4:], uint32(w.ifindex))
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("RTM_GETLINK: %w", serr)
	}
	return nil
}

// run reads link messages until the interface is gone or Close.
func (w *LinkWatch) run() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if errors.Is(err, unix.ENOBUFS) {
			// The socket overran and messages were lost, perhaps the
			// one that mattered: ask again.
			if w.query() != nil {
				return
			}
			continue
		}
		if err != nil {
			return // closed; or a broken socket, which no retry mends
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue // a truncated message: nothing to learn from it
		}
		for _, m := range msgs {
			if w.removes(m) {
				w.goneOne.Do(func() { close(w.gone) })
			}
			w.follow(m)
		}
	}
}

// removes reports whether m says the interface is gone: its RTM_DELLINK, or
// the error answer (ENODEV) to a query.
func (w *LinkWatch) removes(m syscall.NetlinkMessage) bool {
	switch m.Header.Type {
	case unix.RTM_DELLINK:
		return len(m.Data) >= unix.SizeofIfInfomsg && int32(binary.NativeEndian.Uint32(m.Data[4:])) == w.ifindex
	case unix.NLMSG_ERROR:
		return m.Header.Seq == linkQuerySeq && len(m.Data) >= 4 &&
			-int32(binary.NativeEndian.Uint32(m.Data)) == int32(unix.ENODEV)
	}
	return false
}

// follow notes the interface's state from m, if m is a link message about
// it, and calls up when it comes back.
func (w *LinkWatch) follow(m syscall.NetlinkMessage) {
	// struct ifinfomsg: family, pad, type (2), index (4), flags (4), change.
	if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg ||
		int32(binary.NativeEndian.Uint32(m.Data[4:])) != w.ifindex {
		return
	}
	flags := binary.NativeEndian.Uint32(m.Data[8:])
	state := -1
	// IFF_LOWER_UP is the carrier itself; IFF_RUNNING (the operational
	// state) may follow it later.
	if flags&unix.IFF_UP != 0 && flags&unix.IFF_LOWER_UP != 0 {
		state = 1
	}
	if state == 1 && w.running == -1 && w.up != nil {
		w.up()
	}
	w.running = state
}
