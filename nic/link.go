package nic

import (
	"errors"
	"net"
	"time"
)

// Frame is one Ethernet frame buffer lent by a Link to its caller.
//
// A received frame (from Receive) holds the frame's bytes in Data. A transmit
// buffer (from Alloc) has len(Data) >= MTU()+EthernetHeaderLen; the caller writes the frame at the start of Data and reslices Data to the
// frame's length before Transmit. Either kind goes back to its link through
// Release (or, for transmit buffers, Transmit). Data must not be used after
// that: it is a view into memory the link reuses (UMEM for AF_XDP).
type Frame struct {
	Data   []byte
	Handle uint64 // identifies the buffer to the link that lent it; opaque to callers
}

// Link is a network interface queue seen as batches of frames. All methods
// are called from one goroutine (the queue's poller); a Link is not safe for
// concurrent use. No method blocks, and none allocates per frame.
type Link interface {
	// Receive stores up to len(fs) received frames into fs and returns how
	// many it stored. The frames stay the caller's until Release.
	Receive(fs []Frame) (int, error)
	// Alloc stores up to len(fs) empty transmit buffers into fs and returns
	// how many it stored (fewer when the link is short of buffers).
	Alloc(fs []Frame) int
	// Transmit queues fs[:n] for sending and takes ownership of them; the
	// buffers fs[n:] it could not queue stay the caller's (to retry or
	// Release). An error that is ErrLinkDown means the link is down for
	// now (the interface is down or its carrier is lost): the link kept
	// or dropped the frames it counted in n, and the caller carries on, as
	// a kernel does, leaving recovery to TCP's retransmission. Any other
	// error means the link failed; frames counted in n are the link's
	// either way.
	Transmit(fs []Frame) (n int, err error)
	// Release gives frames back to the link: received frames, and transmit
	// buffers that will not be sent.
	Release(fs []Frame)
	// MAC is the link's hardware address.
	MAC() net.HardwareAddr
	// MTU is the largest IP packet the link carries (the frame minus its
	// 14-byte Ethernet header).
	MTU() int
	// Stats returns the link's counters.
	Stats() Stats
	// Close releases the link's resources. Frames lent out are invalid after.
	Close() error
}

// Parker is a link whose poller can sleep until a frame arrives, a
// deadline passes, or another goroutine calls Wake. To lose no wakeup, the
// poller calls Arm, then publishes that it sleeps, re-checks its work, and
// only then calls Park; a waker that sees the flag clears it and calls
// Wake, which makes the current or the next Park return.
type Parker interface {
	// Arm sets the latest time the next Park returns; the zero time
	// means no limit.
	Arm(deadline time.Time) error
	// Park sleeps until a frame is there to Receive, the armed deadline,
	// or a Wake, without holding an OS thread.
	Park() error
	// Wake makes Park return. Any goroutine may call it.
	Wake()
}

// Stats counts what crossed a link.
type Stats struct {
	RxFrames, RxBytes uint64 // frames handed to the caller by Receive
	TxFrames, TxBytes uint64 // frames accepted by Transmit
	RxDropped         uint64 // frames the link dropped before Receive (queue full, too large)
	TxErrors          uint64 // frames accepted by Transmit that could not be sent
	// TxBusy counts the times the link could not send all it was given
	// at once and kept the rest for later; TxDrops the times it dropped
	// a frame it had taken, for want of carrier or of queue room. (The
	// AF_XDP link counts sendto calls that said EAGAIN or ENOBUFS, and
	// EBUSY.)
	TxBusy, TxDrops uint64
}

// EthernetHeaderLen is the length of an Ethernet II header without VLAN tag.
const EthernetHeaderLen = 14

// ErrClosed is returned by a Link used after Close.
var ErrClosed = errors.New("nic: link closed")

// ErrLinkDown is returned by Transmit while the link cannot send for now:
// a fault it recovers from, not a failure (see Link.Transmit).
var ErrLinkDown = errors.New("nic: link down")
