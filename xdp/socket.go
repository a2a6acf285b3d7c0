package xdp

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BindMode chooses between zero-copy and copy mode at bind.
type BindMode int

// Bind modes. ZeroCopy needs driver support (veth has none: the bind fails
// with EOPNOTSUPP), so Auto is what most callers want.
const (
	BindAuto     BindMode = iota // zero-copy if the driver can, else copy
	BindZeroCopy                 // zero-copy or fail
	BindCopy                     // copy mode
)

func (m BindMode) String() string {
	switch m {
	case BindAuto:
		return "auto"
	case BindZeroCopy:
		return "zero-copy"
	case BindCopy:
		return "copy"
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// SocketConfig describes one AF_XDP socket bound to one NIC queue. Ring
// sizes must be powers of two; zero fields take the defaults.
type SocketConfig struct {
	Ifindex int
	Queue   int

	RxSize, TxSize, FillSize, CompletionSize int // default 2048 each

	// Frames is this socket's share of the UMEM's frames; default all that
	// are left. Half of them go on the fill ring at bind, the rest serve TX.
	Frames int

	Mode BindMode
	// NoNeedWakeup turns XDP_USE_NEED_WAKEUP off: every Kick then makes a
	// syscall. Kernels without the feature get the same automatically.
	NoNeedWakeup bool
	// TxBudget raises how many frames one sendto sends in copy mode
	// (XDP_MAX_TX_SKB_BUDGET, Linux 6.18+; the kernel's default is 32).
	// Zero means TxSize capped at 256; negative leaves the kernel default.
	TxBudget int
}

func (c *SocketConfig) setDefaults() error {
	for _, f := range []*int{&c.RxSize, &c.TxSize, &c.FillSize, &c.CompletionSize} {
		if *f == 0 {
			*f = 2048
		}
		if *f < 0 || *f&(*f-1) != 0 {
			return fmt.Errorf("ring size %d is not a power of two", *f)
		}
	}
	if c.Ifindex <= 0 {
		return fmt.Errorf("ifindex %d: must be positive", c.Ifindex)
	}
	if c.Queue < 0 {
		return fmt.Errorf("queue %d: must not be negative", c.Queue)
	}
	if c.TxBudget == 0 {
		c.TxBudget = min(c.TxSize, 256)
	}
	return nil
}

// Socket is an AF_XDP socket bound to one NIC queue, with its four rings
// and its share of the UMEM's frames. It is not safe for concurrent use:
// the poller of its queue owns it.
type Socket struct {
	fd   int
	umem *Umem

	Fill       *Producer[uint64] // frames we give the kernel to receive into
	Completion *Consumer[uint64] // frames the kernel has finished sending
	RX         *Consumer[Desc]   // received frames
	TX         *Producer[Desc]   // frames to send
	Frames     *Allocator        // this socket's frames and their owners

	zeroCopy   bool
	needWakeup bool
	txBudget   int // 0 when the kernel default is in force
	maps       [][]byte
	pollFD     [1]unix.PollFd // Wait's argument, kept so that waiting does not allocate

	// KickBusy counts sendto calls that left frames on the TX ring for
	// the next Kick (EAGAIN, ENOBUFS: the kernel's per-call budget, or
	// its skbs, ran out); KickDrops those on which the kernel dropped a
	// frame it had taken (EBUSY: no carrier, or the device's queue
	// refused it). Neither is an error: TCP retransmits what was lost.
	KickBusy, KickDrops uint64
}

// openXSK opens an AF_XDP socket. The kernel (xsk_create) allows it only
// with CAP_NET_RAW, and says EPERM without naming it.
func openXSK() (int, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) {
		return -1, fmt.Errorf("AF_XDP socket (needs CAP_NET_RAW): %w", err)
	}
	if err != nil {
		return -1, fmt.Errorf("AF_XDP socket: %w", err)
	}
	return fd, nil
}

// NewSocket creates an AF_XDP socket on u and binds it to cfg's queue. The
// first socket on a UMEM uses the UMEM's own file descriptor; later ones
// bind with XDP_SHARED_UMEM and get their own fill and completion rings.
func NewSocket(u *Umem, cfg SocketConfig) (*Socket, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("xdp socket: %w", err)
	}
	s, err := newSocket(u, cfg)
	if err != nil {
		return nil, fmt.Errorf("xdp socket on ifindex %d queue %d: %w", cfg.Ifindex, cfg.Queue, err)
	}
	return s, nil
}

func newSocket(u *Umem, cfg SocketConfig) (_ *Socket, err error) {
	if u.fd < 0 && u.sockets == 0 {
		return nil, errors.New("umem is closed")
	}
	shared := u.sockets > 0
	s := &Socket{fd: u.fd, umem: u}
	if shared {
		if s.fd, err = openXSK(); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			s.unmap()
			if shared {
				unix.Close(s.fd)
			} else if rerr := u.reregister(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	frames := cfg.Frames
	if frames == 0 {
		frames = u.FreeFrames()
	}
	if frames <= 0 || frames > u.FreeFrames() {
		return nil, fmt.Errorf("umem has %d of %d frames left, socket wants %d", u.FreeFrames(), u.FrameCount(), frames)
	}
	for _, r := range []struct {
		opt, size int
		name      string
	}{
		{unix.XDP_UMEM_FILL_RING, cfg.FillSize, "fill"},
		{unix.XDP_UMEM_COMPLETION_RING, cfg.CompletionSize, "completion"},
		{unix.XDP_RX_RING, cfg.RxSize, "rx"},
		{unix.XDP_TX_RING, cfg.TxSize, "tx"},
	} {
		size := int32(r.size)
		if err := setsockopt(s.fd, r.opt, unsafe.Pointer(&size), 4); err != nil {
			return nil, fmt.Errorf("%s ring of %d: %w", r.name, r.size, err)
		}
	}
	var off unix.XDPMmapOffsets
	if _, err := getsockopt(s.fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, fmt.Errorf("XDP_MMAP_OFFSETS: %w", err)
	}
	fill, err := mapRing[uint64](s, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, cfg.FillSize)
	if err != nil {
		return nil, fmt.Errorf("fill ring: %w", err)
	}
	comp, err := mapRing[uint64](s, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, cfg.CompletionSize)
	if err != nil {
		return nil, fmt.Errorf("completion ring: %w", err)
	}
	rx, err := mapRing[Desc](s, off.Rx, unix.XDP_PGOFF_RX_RING, cfg.RxSize)
	if err != nil {
		return nil, fmt.Errorf("rx ring: %w", err)
	}
	tx, err := mapRing[Desc](s, off.Tx, unix.XDP_PGOFF_TX_RING, cfg.TxSize)
	if err != nil {
		return nil, fmt.Errorf("tx ring: %w", err)
	}
	s.Fill, s.TX = newProducer(fill.ix, fill.entries), newProducer(tx.ix, tx.entries)
	s.Completion, s.RX = newConsumer(comp.ix, comp.entries), newConsumer(rx.ix, rx.entries)

	if err := s.bind(cfg, shared); err != nil {
		return nil, err
	}
	s.Frames = u.takeFrames(frames)
	u.sockets++
	if !s.zeroCopy && cfg.TxBudget > 0 {
		s.setTxBudget(cfg.TxBudget)
	}
	s.Refill(uint32(s.Frames.Len() / 2))
	return s, nil
}

// busyWait bounds how long bind waits for the kernel to free a queue.
// When a process holding a socket on the queue exits, the kernel unbinds
// it at once but frees the queue's buffer pool from a workqueue, after
// the frames in flight are let go, so a stack restarted at once (after
// a crash or a kill) would meet EBUSY: measured here, within a few
// milliseconds under a ping flood. A queue another live socket holds
// stays busy, and bind then fails after the wait.
const busyWait = 2 * time.Second

// bind binds the socket, trying zero-copy before copy and need_wakeup
// before without, as cfg allows, and waiting up to busyWait while the
// queue is busy.
func (s *Socket) bind(cfg SocketConfig, shared bool) error {
	deadline := time.Now().Add(busyWait)
	for {
		err := s.bindOnce(cfg, shared)
		if err == nil || !errors.Is(err, unix.EBUSY) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue %d busy for %v: another AF_XDP socket holds it: %w", cfg.Queue, busyWait, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bindOnce is one try of each bind the config allows.
func (s *Socket) bindOnce(cfg SocketConfig, shared bool) error {
	sa := &unix.SockaddrXDP{Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.Queue)}
	if shared {
		// Sockets sharing a UMEM inherit copy mode and need_wakeup from
		// the first; the kernel refuses those flags here (EINVAL).
		sa.Flags, sa.SharedUmemFD = unix.XDP_SHARED_UMEM, uint32(s.umem.fd)
		if err := unix.Bind(s.fd, sa); err != nil {
			return fmt.Errorf("bind with shared umem: %w", err)
		}
		return s.readOptions(!cfg.NoNeedWakeup)
	}
	modes := map[BindMode][]uint16{
		BindAuto:     {unix.XDP_ZEROCOPY, unix.XDP_COPY},
		BindZeroCopy: {unix.XDP_ZEROCOPY},
		BindCopy:     {unix.XDP_COPY},
	}[cfg.Mode]
	wakeups := []uint16{unix.XDP_USE_NEED_WAKEUP, 0}
	if cfg.NoNeedWakeup {
		wakeups = wakeups[1:]
	}
	var errs []error
	for _, mode := range modes {
		for _, wake := range wakeups {
			sa.Flags = mode | wake
			err := unix.Bind(s.fd, sa)
			if err == nil {
				return s.readOptions(wake != 0)
			}
			errs = append(errs, fmt.Errorf("bind %s: %w", bindFlagsString(sa.Flags), err))
			if !errors.Is(err, unix.EINVAL) || wake == 0 {
				// EINVAL may mean a kernel without need_wakeup; any other
				// error is about the mode, so try the next mode.
				break
			}
		}
	}
	return errors.Join(errs...)
}

func bindFlagsString(f uint16) string {
	s := "copy"
	if f&unix.XDP_ZEROCOPY != 0 {
		s = "zero-copy"
	}
	if f&unix.XDP_USE_NEED_WAKEUP != 0 {
		s += "+need_wakeup"
	}
	return s
}

// readOptions asks the kernel which mode is in force after bind.
func (s *Socket) readOptions(needWakeup bool) error {
	var opts uint32
	if _, err := getsockopt(s.fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), 4); err != nil {
		return fmt.Errorf("XDP_OPTIONS: %w", err)
	}
	s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	s.needWakeup = needWakeup
	return nil
}

// setTxBudget raises the copy-mode frames-per-sendto budget where the kernel
// has XDP_MAX_TX_SKB_BUDGET; elsewhere the default of 32 stays.
func (s *Socket) setTxBudget(budget int) {
	b := uint32(min(budget, s.TX.Size()))
	if setsockopt(s.fd, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&b), 4) == nil {
		s.txBudget = int(b)
	}
}

type mappedRing[T uint64 | Desc] struct {
	ix      indexes
	entries []T
}

func mapRing[T uint64 | Desc](s *Socket, off unix.XDPRingOffset, pgoff int64, size int) (mappedRing[T], error) {
	var zero T
	length := int(off.Desc) + size*int(unsafe.Sizeof(zero))
	mem, err := unix.Mmap(s.fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return mappedRing[T]{}, fmt.Errorf("mmap: %w", err)
	}
	s.maps = append(s.maps, mem)
	base := unsafe.Pointer(&mem[0])
	return mappedRing[T]{
		ix: newIndexes(unsafe.Add(base, off.Producer), unsafe.Add(base, off.Consumer),
			unsafe.Add(base, off.Flags), uint32(size)),
		entries: unsafe.Slice((*T)(unsafe.Add(base, off.Desc)), size),
	}, nil
}

// FD is the socket's file descriptor (for the XSKMAP and for polling).
func (s *Socket) FD() int { return s.fd }

// Umem is the UMEM the socket's frames live in.
func (s *Socket) Umem() *Umem { return s.umem }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// NeedWakeup reports whether XDP_USE_NEED_WAKEUP is in force.
func (s *Socket) NeedWakeup() bool { return s.needWakeup }

// TxBudget is the frames-per-sendto budget set with XDP_MAX_TX_SKB_BUDGET,
// or 0 if the kernel's default (32) is in force.
func (s *Socket) TxBudget() int { return s.txBudget }

// Refill moves up to max free frames onto the fill ring, so the kernel has
// buffers to receive into, and returns how many it moved.
func (s *Socket) Refill(max uint32) uint32 {
	n := min(max, uint32(s.Frames.FreeCount()))
	idx, n := s.Fill.Reserve(n)
	for i := range n {
		addr, _ := s.Frames.Alloc(OwnerFill)
		s.Fill.Set(idx+i, addr)
	}
	s.Fill.Submit(n)
	return n
}

// Reap takes up to max sent frames off the completion ring and frees them,
// returning how many.
func (s *Socket) Reap(max uint32) uint32 {
	idx, n := s.Completion.Peek(max)
	for i := range n {
		s.Frames.Move(s.Completion.At(idx+i), OwnerTX, OwnerFree)
	}
	s.Completion.Release(n)
	return n
}

// Kick makes the kernel send what is on the TX ring. With need_wakeup it
// makes a syscall only when the ring's flag asks for one. Transient
// conditions (EAGAIN, EBUSY, ENOBUFS: the kernel is still busy with earlier
// frames, out of skbs, or dropped a frame for want of carrier) are not
// errors: the frames stay on the ring and the next Kick retries. ENETDOWN
// (the interface is down: the kernel leaves the ring alone, and sends it
// once the interface is up) and ENXIO (the socket is unbound: its device
// was removed, or a zero-copy driver is reconfiguring) come back as
// ErrNetDown and ErrUnbound, made once so that a flap does not allocate
// per batch; the rest as a *SyscallError.
func (s *Socket) Kick() error {
	if s.needWakeup && !s.TX.NeedWakeup() {
		return nil
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		s.KickBusy++
		return nil
	case unix.EBUSY:
		s.KickDrops++
		return nil
	case unix.ENETDOWN:
		return ErrNetDown
	case unix.ENXIO:
		return ErrUnbound
	}
	return &SyscallError{Op: "sendto", Errno: e}
}

// Kick's errors for a link that is down or gone; errors.Is matches them
// with their errno too.
var (
	ErrNetDown error = &SyscallError{Op: "sendto", Errno: unix.ENETDOWN}
	ErrUnbound error = &SyscallError{Op: "sendto", Errno: unix.ENXIO}
)

// WakeRx tells the kernel that the fill ring has buffers again, when
// need_wakeup says it waits for that (driver mode after the fill ring ran
// empty). Without need_wakeup it does nothing: the kernel polls by itself.
func (s *Socket) WakeRx() error {
	if !s.needWakeup || !s.Fill.NeedWakeup() {
		return nil
	}
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
		return nil
	}
	return &SyscallError{Op: "recvfrom", Errno: e}
}

// Wait blocks in poll(2) until the RX ring has frames or timeoutMs passes
// (-1: no limit). It is for simple loops and benchmarks; the fast path
// parks through the Go netpoller instead.
func (s *Socket) Wait(timeoutMs int) error {
	s.pollFD[0] = unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN}
	if _, err := unix.Poll(s.pollFD[:], timeoutMs); err != nil && err != unix.EINTR {
		return fmt.Errorf("xdp: poll: %w", err)
	}
	return nil
}

// Statistics are the kernel's XDP_STATISTICS counters for one socket.
type Statistics struct {
	RxDropped          uint64 // frames dropped for reasons other than invalid descriptors (e.g. too large for a frame)
	RxInvalidDescs     uint64 // invalid descriptors on the fill ring
	TxInvalidDescs     uint64 // invalid descriptors on the TX ring
	RxRingFull         uint64 // frames dropped because the RX ring was full
	FillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs   uint64 // times the kernel found the TX ring empty
}

// Stats reads the socket's XDP_STATISTICS.
func (s *Socket) Stats() (Statistics, error) {
	var st unix.XDPStatistics
	if _, err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)); err != nil {
		return Statistics{}, fmt.Errorf("XDP_STATISTICS: %w", err)
	}
	return Statistics{
		RxDropped:          st.Rx_dropped,
		RxInvalidDescs:     st.Rx_invalid_descs,
		TxInvalidDescs:     st.Tx_invalid_descs,
		RxRingFull:         st.Rx_ring_full,
		FillRingEmptyDescs: st.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:   st.Tx_ring_empty_descs,
	}, nil
}

func (s *Socket) unmap() {
	for _, m := range s.maps {
		unix.Munmap(m)
	}
	s.maps = nil
}

// Close unmaps the rings and closes the socket. Frames on the socket's
// rings go back to the kernel with it; the UMEM stays mapped until its own
// Close.
func (s *Socket) Close() error {
	if s.fd < 0 {
		return nil
	}
	s.unmap()
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// SyscallError is a failed syscall on the data path, with the errno callers
// branch on (ENETDOWN when the link went down, ENXIO when the device left).
type SyscallError struct {
	Op    string
	Errno unix.Errno
}

func (e *SyscallError) Error() string { return "xdp: " + e.Op + ": " + e.Errno.Error() }

// Unwrap lets errors.Is match the errno.
func (e *SyscallError) Unwrap() error { return e.Errno }
