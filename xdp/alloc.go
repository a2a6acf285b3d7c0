package xdp

import "fmt"

// Owner says who holds a UMEM frame at a moment.
type Owner uint8

// The owners of a frame. A frame moves Free -> Fill -> App (received) ->
// Fill again, or Free -> App (allocated for TX) -> TX -> Free (completed).
const (
	OwnerFree Owner = iota // on the allocator's free stack
	OwnerFill              // on the fill ring, or filled by the kernel and waiting on the RX ring
	OwnerApp               // lent to the program: received, or being written for TX
	OwnerTX                // on the TX ring, or sent and waiting on the completion ring
)

func (o Owner) String() string {
	switch o {
	case OwnerFree:
		return "free"
	case OwnerFill:
		return "fill"
	case OwnerApp:
		return "app"
	case OwnerTX:
		return "tx"
	}
	return fmt.Sprintf("owner(%d)", uint8(o))
}

// Allocator hands out the frames of one socket's share of a UMEM in O(1): a
// stack of free frame addresses, plus the owner of every frame so that a
// frame is never lost or given out twice. It is not safe for concurrent use:
// one poller owns it.
type Allocator struct {
	first     uint64 // address of the first frame
	frameSize uint64
	shift     uint // log2(frameSize)
	free      []uint64
	owner     []Owner

	// Violations counts moves that found a frame with the wrong owner (a
	// double free, a foreign address); each such move was refused.
	Violations uint64
}

// NewAllocator manages count frames of frameSize bytes (a power of two)
// starting at UMEM address first. All frames start free.
func NewAllocator(first uint64, count, frameSize int) (*Allocator, error) {
	if frameSize <= 0 || frameSize&(frameSize-1) != 0 {
		return nil, fmt.Errorf("frame size %d is not a power of two", frameSize)
	}
	if count <= 0 {
		return nil, fmt.Errorf("frame count %d must be positive", count)
	}
	if first%uint64(frameSize) != 0 {
		return nil, fmt.Errorf("first frame address %#x is not frame-aligned", first)
	}
	a := &Allocator{
		first:     first,
		frameSize: uint64(frameSize),
		free:      make([]uint64, count),
		owner:     make([]Owner, count),
	}
	for uint64(1)<<a.shift != a.frameSize {
		a.shift++
	}
	// Lowest addresses on top, so a fresh socket uses the start of its share.
	for i := range count {
		a.free[i] = first + uint64(count-1-i)*a.frameSize
	}
	return a, nil
}

// Len is the number of frames the allocator manages.
func (a *Allocator) Len() int { return len(a.owner) }

// FreeCount is the number of frames on the free stack.
func (a *Allocator) FreeCount() int { return len(a.free) }

// Base returns the address of the frame that contains UMEM address addr
// (RX descriptors point past the frame's headroom).
func (a *Allocator) Base(addr uint64) uint64 { return addr &^ (a.frameSize - 1) }

// index returns the frame number of addr and whether addr is one of ours.
func (a *Allocator) index(addr uint64) (int, bool) {
	if addr < a.first {
		return 0, false
	}
	i := (addr - a.first) >> a.shift
	return int(i), i < uint64(len(a.owner))
}

// Owner reports who holds the frame containing addr (false if the address
// is not in this allocator's share).
func (a *Allocator) Owner(addr uint64) (Owner, bool) {
	i, ok := a.index(addr)
	if !ok {
		return 0, false
	}
	return a.owner[i], true
}

// Alloc pops a free frame and gives it to to. It returns false when no
// frame is free.
func (a *Allocator) Alloc(to Owner) (addr uint64, ok bool) {
	n := len(a.free)
	if n == 0 {
		return 0, false
	}
	addr = a.free[n-1]
	a.free = a.free[:n-1]
	i, _ := a.index(addr)
	a.owner[i] = to
	return addr, true
}

// Move hands the frame containing addr from one owner to another. It
// refuses, counts a violation and returns false if the frame is not ours or
// not held by from. Moving to OwnerFree pushes the frame on the free stack.
func (a *Allocator) Move(addr uint64, from, to Owner) bool {
	i, ok := a.index(addr)
	if !ok || a.owner[i] != from || from == OwnerFree {
		a.Violations++
		return false
	}
	a.owner[i] = to
	if to == OwnerFree {
		a.free = append(a.free, a.first+uint64(i)<<a.shift)
	}
	return true
}
