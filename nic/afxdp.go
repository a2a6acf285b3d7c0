package nic

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// XDPConfig opens a NIC's queues as Links over AF_XDP.
type XDPConfig struct {
	Interface string // the NIC, by name
	// Queues is how many queues to open, 0 through Queues-1, one socket
	// each on one shared UMEM; default 1.
	Queues int

	// Addrs are the IPv4 addresses the stack owns. The steering program
	// sends the sockets IPv4 packets to them and ARP about them; all other
	// traffic stays with the kernel.
	Addrs []netip.Addr
	// Rules optionally narrow the steered IPv4 traffic to protocols and
	// destination-port ranges.
	Rules []steer.Rule
	// Attach chooses native (driver) or generic XDP; Auto tries native first.
	Attach steer.Mode
	// Replace allows replacing an XDP program someone else attached.
	Replace bool

	// Umem sizes the shared UMEM; its frames are split evenly between the
	// queues. The default gives each queue 4096 frames.
	Umem xdp.UmemConfig
	// Socket shapes every queue's socket; Ifindex, Queue and Frames are
	// filled in.
	Socket xdp.SocketConfig
}

// XDPDevice is a NIC opened for the stack: the XDP program that steers the
// stack's traffic, one UMEM, and an XDPLink per queue. Close detaches the
// program; so does the process's exit, whatever ends it, because the
// program is held by a BPF link that dies with its file descriptor.
type XDPDevice struct {
	umem  *xdp.Umem
	prog  *steer.Program
	mu    sync.Mutex // guards links against the watch's goroutine
	links []*XDPLink
	watch *xdp.LinkWatch
	gone  <-chan struct{} // the watch's, kept past Close
}

// ErrInterfaceRemoved is why a device is Gone.
var ErrInterfaceRemoved = errors.New("interface removed")

// XDPLink is a Link over one AF_XDP socket, one queue of an XDPDevice. Its
// frames are views into the UMEM: a received frame's Data points where the
// kernel wrote it, and a transmit buffer is a whole UMEM frame, sent in
// place.
type XDPLink struct {
	umem   *xdp.Umem
	sock   *xdp.Socket
	parker *xdp.Parker
	mac    net.HardwareAddr
	mtu    int
	stats  Stats
	ring   xdp.Statistics // the socket's, as last read
	// upAgain is set by the device's watch when the interface is back
	// up, for Receive to kick the TX ring (see XDPDevice.linkUp).
	upAgain atomic.Bool
	// txPending says the last kick left frames on the TX ring that the
	// kernel would not take then (see flush).
	txPending bool
}

// OpenXDP binds an AF_XDP socket to each of cfg's queues and attaches the
// steering program. Call it in the network namespace of the interface.
func OpenXDP(cfg XDPConfig) (_ *XDPDevice, err error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		// net's error ("route ip+net: no such network interface") names
		// neither the interface nor what was being done.
		return nil, fmt.Errorf("open xdp device %q: %w", cfg.Interface, err)
	}
	if cfg.Queues == 0 {
		cfg.Queues = 1
	}
	d := &XDPDevice{}
	defer func() {
		if err != nil {
			d.Close()
			err = fmt.Errorf("open xdp device %s: %w", cfg.Interface, err)
		}
	}()
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("not an Ethernet interface (hardware address %q)", ifi.HardwareAddr)
	}
	// Watched from before the first bind, so that no removal is missed.
	if d.watch, err = xdp.WatchLink(ifi.Index, d.linkUp); err != nil {
		return nil, err
	}
	d.gone = d.watch.Gone()
	if cfg.Queues < 0 {
		return nil, fmt.Errorf("%d queues: must be positive", cfg.Queues)
	}
	// The kernel refuses a bind beyond the NIC's queues with a bare
	// EINVAL; say so first. A driver that does not report its channels is
	// left to the bind.
	if n, err := xdp.Queues(cfg.Interface); err == nil && cfg.Queues > n {
		return nil, fmt.Errorf("%d queues asked for, but %s has %d (see ethtool -l %s)", cfg.Queues, cfg.Interface, n, cfg.Interface)
	}
	if cfg.Umem.FrameCount == 0 {
		cfg.Umem.FrameCount = 4096 * cfg.Queues
	}
	if d.umem, err = xdp.NewUmem(cfg.Umem); err != nil {
		return nil, err
	}
	if max := d.umem.FrameSize() - d.umem.RXOffset() - EthernetHeaderLen; ifi.MTU > max {
		return nil, fmt.Errorf("MTU %d does not fit a %d-byte UMEM frame (at most %d)", ifi.MTU, d.umem.FrameSize(), max)
	}
	d.prog, err = steer.Attach(steer.Config{
		Ifindex: ifi.Index, Addrs: cfg.Addrs, Rules: cfg.Rules, Mode: cfg.Attach, Replace: cfg.Replace,
	})
	if err != nil {
		return nil, err
	}
	for q := range cfg.Queues {
		sc := cfg.Socket
		sc.Ifindex, sc.Queue, sc.Frames = ifi.Index, q, d.umem.FrameCount()/cfg.Queues
		sock, err := xdp.NewSocket(d.umem, sc)
		if err != nil {
			return nil, err
		}
		link := &XDPLink{umem: d.umem, sock: sock, parker: sock.NewParker(), mac: ifi.HardwareAddr, mtu: ifi.MTU}
		d.mu.Lock()
		d.links = append(d.links, link)
		d.mu.Unlock()
		if err := d.prog.Register(q, sock.FD()); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Links are the device's queues, in queue order.
func (d *XDPDevice) Links() []*XDPLink { return d.links }

// Program is the steering program, to add or remove addresses at run time.
func (d *XDPDevice) Program() *steer.Program { return d.prog }

// Gone is closed when the interface leaves the namespace for good (deleted,
// moved to another namespace, or a veth whose peer was destroyed): its
// sockets never send or receive again. A link that is merely down makes
// Transmit return ErrLinkDown instead, and comes back.
func (d *XDPDevice) Gone() <-chan struct{} { return d.gone }

// linkUp runs on the watch's goroutine when the interface is back up. The
// frames sendto left on the TX rings while it was down (ENETDOWN) would
// wait for the next transmit, which may be a TCP retransmission seconds
// away after the RTO's backoff; so each link's poller is woken to kick
// its ring (the socket is the poller's: only it makes the syscall).
func (d *XDPDevice) linkUp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.links {
		l.upAgain.Store(true)
		l.parker.Wake()
	}
}

// Close detaches the steering program and frees the sockets and the UMEM.
func (d *XDPDevice) Close() error {
	var errs []error
	if d.watch != nil {
		errs = append(errs, d.watch.Close())
		d.watch = nil
	}
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
		d.prog = nil
	}
	for _, l := range d.links {
		errs = append(errs, l.Close())
	}
	d.links = nil
	if d.umem != nil {
		errs = append(errs, d.umem.Close())
		d.umem = nil
	}
	return errors.Join(errs...)
}

// Socket is the AF_XDP socket under the link, for its mode and statistics.
func (l *XDPLink) Socket() *xdp.Socket { return l.sock }

// Receive takes up to len(fs) frames off the RX ring.
func (l *XDPLink) Receive(fs []Frame) (int, error) {
	if l.sock == nil {
		return 0, ErrClosed
	}
	if l.txPending || l.upAgain.Load() && l.upAgain.Swap(false) {
		// Frames wait on the TX ring: the kernel took none at the last
		// kick, or the interface is back up. They go now; an error
		// means it is down again, and the next Transmit says so.
		_ = l.flush()
	}
	rx, frames := l.sock.RX, l.sock.Frames
	idx, n := rx.Peek(uint32(len(fs)))
	got := 0
	for i := range n {
		d := rx.At(idx + i)
		base := frames.Base(d.Addr)
		if !frames.Move(base, xdp.OwnerFill, xdp.OwnerApp) {
			// The kernel handed back a frame we did not lend it: counted
			// in the allocator's Violations, and not touched.
			continue
		}
		fs[got] = Frame{Data: l.umem.Bytes(d.Addr, int(d.Len)), Handle: base}
		l.stats.RxBytes += uint64(d.Len)
		got++
	}
	rx.Release(n)
	l.stats.RxFrames += uint64(got)
	return got, nil
}

// Release puts frames back on the fill ring, so the kernel can receive into
// them again; transmit buffers that will not be sent go the same way.
func (l *XDPLink) Release(fs []Frame) {
	if l.sock == nil {
		return
	}
	fill, frames := l.sock.Fill, l.sock.Frames
	idx, n := fill.Reserve(uint32(len(fs)))
	var put uint32
	for i, f := range fs {
		switch {
		case uint32(i) >= n:
			// Unreachable while the fill ring is as large as the frame
			// share; keep the frame rather than lose it.
			frames.Move(f.Handle, xdp.OwnerApp, xdp.OwnerFree)
		case frames.Move(f.Handle, xdp.OwnerApp, xdp.OwnerFill):
			fill.Set(idx+put, f.Handle)
			put++
		}
	}
	fill.Cancel(n - put)
	fill.Submit(put)
	// Only a waiting driver needs the syscall; it is rare, and an error
	// here resurfaces on the next Kick.
	_ = l.sock.WakeRx()
}

// Alloc hands out free UMEM frames for transmit, first taking back the
// frames the kernel has finished sending.
func (l *XDPLink) Alloc(fs []Frame) int {
	if l.sock == nil {
		return 0
	}
	frames := l.sock.Frames
	if frames.FreeCount() < len(fs) {
		l.sock.Reap(uint32(l.sock.Completion.Size()))
	}
	for i := range fs {
		addr, ok := frames.Alloc(xdp.OwnerApp)
		if !ok {
			return i
		}
		fs[i] = Frame{Data: l.umem.Frame(addr), Handle: addr}
	}
	return len(fs)
}

// Transmit puts frames on the TX ring and kicks the kernel at most once.
// Each frame's Data must start at the start of its buffer.
func (l *XDPLink) Transmit(fs []Frame) (int, error) {
	if l.sock == nil {
		return 0, ErrClosed
	}
	tx, frames := l.sock.TX, l.sock.Frames
	idx, n := tx.Reserve(uint32(len(fs)))
	var put uint32
	for _, f := range fs[:n] {
		if !frames.Move(f.Handle, xdp.OwnerApp, xdp.OwnerTX) {
			continue // not a buffer of ours: counted as a violation, not sent
		}
		tx.Set(idx+put, xdp.Desc{Addr: f.Handle, Len: uint32(len(f.Data))})
		l.stats.TxBytes += uint64(len(f.Data))
		put++
	}
	tx.Cancel(n - put)
	tx.Submit(put)
	l.stats.TxFrames += uint64(put)
	switch err := l.flush(); err {
	case nil:
	case xdp.ErrNetDown, xdp.ErrUnbound:
		// Down (the frames wait on the ring for the interface to come
		// up) or unbound (the device is gone, or a zero-copy driver is
		// reconfiguring): the device's watch tells the two apart.
		return int(n), ErrLinkDown
	default:
		l.stats.TxErrors += uint64(put)
		return int(n), err
	}
	return int(n), nil
}

// flush has the kernel send what waits on the TX ring. The kernel takes a
// descriptor only once it has reserved the frame's slot on the completion
// ring, so the ring is reaped before every kick: Alloc reaps only when the
// free list runs short, and a completion ring left full held frames on the
// TX ring however often it was kicked (a 16 KiB echo stalled 2-6 s in RTO
// backoff, one run in 15, until the frames held meanwhile ran the free
// list dry). While the kernel takes frames but stops at its per-call
// budget, flush kicks again; when it takes none (EAGAIN or ENOBUFS with no
// progress: out of skbs, or the device's queue stopped), txPending makes
// the next Receive, every poller round, try again.
func (l *XDPLink) flush() error {
	for {
		l.sock.Reap(uint32(l.sock.Completion.Size()))
		before, busy := l.sock.TX.Pending(), l.sock.KickBusy
		if err := l.sock.Kick(); err != nil {
			return err
		}
		left := l.sock.TX.Pending()
		l.txPending = l.sock.KickBusy != busy && left > 0
		if !l.txPending || left == before {
			return nil
		}
	}
}

// Wait blocks until the RX ring has frames or timeout passes.
func (l *XDPLink) Wait(timeout time.Duration) error {
	if l.sock == nil {
		return ErrClosed
	}
	return l.sock.Wait(int((timeout + time.Millisecond - 1) / time.Millisecond))
}

// Arm, Park and Wake make the link a Parker: the poller sleeps in the Go
// netpoller on the socket (see xdp.Parker).
func (l *XDPLink) Arm(deadline time.Time) error { return l.parker.Arm(deadline) }

// Park sleeps until the RX ring has frames, the armed deadline, or Wake.
func (l *XDPLink) Park() error { return l.parker.Park() }

// Wake makes Park return; any goroutine may call it.
func (l *XDPLink) Wake() { l.parker.Wake() }

// MAC is the interface's hardware address.
func (l *XDPLink) MAC() net.HardwareAddr { return l.mac }

// MTU is the interface's MTU.
func (l *XDPLink) MTU() int { return l.mtu }

// Stats returns the link's counters; RxDropped comes from the kernel's
// XDP_STATISTICS (frames too large, RX ring full). After Close, the last
// ones.
func (l *XDPLink) Stats() Stats {
	s := l.stats
	if l.sock != nil {
		s.TxBusy, s.TxDrops = l.sock.KickBusy, l.sock.KickDrops
	}
	ks := l.RingStats()
	s.RxDropped = ks.RxDropped + ks.RxRingFull
	s.TxErrors += ks.TxInvalidDescs
	return s
}

// RingStats returns the kernel's XDP_STATISTICS of the link's socket:
// what it dropped, and how often it found a ring empty. After Close, the
// last ones, read as the socket closed.
func (l *XDPLink) RingStats() xdp.Statistics {
	if l.sock != nil {
		if ks, err := l.sock.Stats(); err == nil {
			l.ring = ks
		}
	}
	return l.ring
}

// Close closes the link's socket. The device's Close closes every link.
func (l *XDPLink) Close() error {
	if l.sock == nil {
		return nil
	}
	// The counters the socket holds outlive it: a stack's are read
	// after it closed.
	l.RingStats()
	l.stats.TxBusy, l.stats.TxDrops = l.sock.KickBusy, l.sock.KickDrops
	err := l.sock.Close()
	l.sock = nil
	return err
}
