package xdp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UmemConfig sizes a UMEM. Zero fields take the defaults.
type UmemConfig struct {
	FrameCount int // frames in the UMEM; default 4096
	FrameSize  int // bytes per frame, 2048 or 4096; default 4096
	// Headroom is space the kernel leaves free in front of every received
	// frame (after its own XDP_PACKET_HEADROOM); default 0.
	Headroom int
}

func (c *UmemConfig) setDefaults() error {
	if c.FrameCount == 0 {
		c.FrameCount = 4096
	}
	if c.FrameSize == 0 {
		c.FrameSize = 4096
	}
	if c.FrameSize != 2048 && c.FrameSize != 4096 {
		return fmt.Errorf("frame size %d: must be 2048 or 4096", c.FrameSize)
	}
	if c.FrameCount < 0 {
		return fmt.Errorf("frame count %d: must be positive", c.FrameCount)
	}
	if c.Headroom < 0 || c.Headroom > c.FrameSize-unix.XDP_PACKET_HEADROOM-1518 {
		return fmt.Errorf("headroom %d: leaves no room for a 1518-byte frame in a %d-byte frame", c.Headroom, c.FrameSize)
	}
	return nil
}

// Umem is the packet memory shared with the kernel: one mmap'd area cut
// into equal frames, registered on an AF_XDP socket with XDP_UMEM_REG.
// Sockets take disjoint shares of its frames (see SocketConfig.Frames), so
// several sockets, one per queue, can share it, each with its own poller.
type Umem struct {
	fd        int // the socket the UMEM is registered on; the first Socket binds it
	area      []byte
	cfg       UmemConfig
	hugePages bool
	nextFrame int // first frame not yet given to a socket
	sockets   int // sockets bound on this UMEM (the first one owns fd)
}

// NewUmem maps and registers a UMEM. It asks for huge pages (fewer TLB
// misses on the RX path) and falls back to normal pages.
func NewUmem(cfg UmemConfig) (*Umem, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("umem: %w", err)
	}
	size := cfg.FrameCount * cfg.FrameSize
	u := &Umem{fd: -1, cfg: cfg}
	var err error
	u.area, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE|unix.MAP_HUGETLB)
	if err == nil {
		u.hugePages = true
	} else {
		u.area, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("umem: mmap %d bytes: %w", size, err)
		}
	}
	if err := u.register(); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// register opens the UMEM's socket and registers the area on it.
func (u *Umem) register() (err error) {
	if u.fd, err = openXSK(); err != nil {
		return fmt.Errorf("umem: %w", err)
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&u.area[0]))),
		Len:      uint64(len(u.area)),
		Size:     uint32(u.cfg.FrameSize),
		Headroom: uint32(u.cfg.Headroom),
	}
	if err := setsockopt(u.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("umem: XDP_UMEM_REG (%d frames of %d bytes)%s: %w", u.cfg.FrameCount, u.cfg.FrameSize, lockedMemoryCause(err, len(u.area)), err)
	}
	return nil
}

// lockedMemoryCause says why XDP_UMEM_REG failed with ENOBUFS: the kernel
// pins the UMEM's pages and, unless the process has CAP_IPC_LOCK, refuses
// (xdp_umem_account_pages) when they exceed RLIMIT_MEMLOCK. Otherwise it
// returns "".
func lockedMemoryCause(err error, size int) string {
	if !errors.Is(err, unix.ENOBUFS) {
		return ""
	}
	limit := "unknown"
	var r unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &r) == nil {
		limit = fmt.Sprintf("%d KiB", r.Cur>>10)
	}
	return fmt.Sprintf(": locking its %d KiB in memory exceeds RLIMIT_MEMLOCK (%s); grant CAP_IPC_LOCK or raise the limit (ulimit -l, LimitMEMLOCK=)", size>>10, limit)
}

// reregister replaces the UMEM's socket after a first bind on it failed:
// the failed attempt left rings on it that cannot be set again.
func (u *Umem) reregister() error {
	unix.Close(u.fd)
	u.fd = -1
	return u.register()
}

// HugePages reports whether the area is backed by huge pages.
func (u *Umem) HugePages() bool { return u.hugePages }

// FrameSize is the size of every frame in bytes.
func (u *Umem) FrameSize() int { return u.cfg.FrameSize }

// FrameCount is the number of frames in the UMEM.
func (u *Umem) FrameCount() int { return u.cfg.FrameCount }

// FreeFrames is the number of frames not yet given to a socket.
func (u *Umem) FreeFrames() int { return u.cfg.FrameCount - u.nextFrame }

// RXOffset is the offset from a frame's start at which the kernel writes
// received data: its XDP_PACKET_HEADROOM plus the configured headroom.
func (u *Umem) RXOffset() int { return unix.XDP_PACKET_HEADROOM + u.cfg.Headroom }

// Bytes returns the n bytes at UMEM address addr. It does not allocate.
func (u *Umem) Bytes(addr uint64, n int) []byte {
	return u.area[addr : addr+uint64(n) : addr+uint64(n)]
}

// Frame returns the whole frame starting at addr, for writing a TX frame.
func (u *Umem) Frame(addr uint64) []byte {
	end := addr + uint64(u.cfg.FrameSize)
	return u.area[addr:end:end]
}

// takeFrames gives the next n frames to a socket, as an allocator over
// them. The caller has checked that n frames are left.
func (u *Umem) takeFrames(n int) *Allocator {
	a, err := NewAllocator(uint64(u.nextFrame*u.cfg.FrameSize), n, u.cfg.FrameSize)
	if err != nil {
		panic("xdp: umem frame share: " + err.Error()) // unreachable: size and alignment are validated
	}
	u.nextFrame += n
	return a
}

// Close unmaps the area. Close every socket on the UMEM first.
func (u *Umem) Close() error {
	var errs []error
	if u.fd >= 0 && u.sockets == 0 {
		// Once a socket is bound on fd, that socket owns and closes it.
		errs = append(errs, unix.Close(u.fd))
	}
	u.fd = -1
	if u.area != nil {
		errs = append(errs, unix.Munmap(u.area))
		u.area = nil
	}
	return errors.Join(errs...)
}

func setsockopt(fd, opt int, val unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, val unsafe.Pointer, size uintptr) (uintptr, error) {
	n := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(n), nil
}
