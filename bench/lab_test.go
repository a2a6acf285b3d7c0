package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/lab"
	"github.com/xdpnet/xdpnet/internal/testframe"
	"github.com/xdpnet/xdpnet/xdp"
)

// Shared by the benchmarks of this package: the AF_XDP sender and CPU
// pinning.

// TestMain fails the run if a benchmark leaves a lab namespace behind.
func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }

// The CPUs of the 2-vCPU lab machine: the sender's, and the receive side's.
const (
	senderCPU  = 0
	receiveCPU = 1
)

// timeLimit bounds every measured loop: a run that stalls fails by itself.
const timeLimit = 60 * time.Second

// discardPort is the UDP port the sender sends to (RFC 863 discard).
const discardPort = 9

// pin keeps thread or process tid on one CPU.
func pin(tid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(tid, &set); err != nil {
		return fmt.Errorf("pin %d to CPU %d: %w", tid, cpu, err)
	}
	return nil
}

// pinThread locks the calling goroutine to its thread and keeps the thread
// on one CPU; unpin undoes both (once, however often it is called), so the
// thread goes back to the Go scheduler free to run anywhere. The sender gets CPU 0 and the receive
// side CPU 1: see BenchmarkRxDrop and BenchmarkUDPFlood for why CPU
// figures need them apart.
func pinThread(cpu int) (unpin func(), err error) {
	runtime.LockOSThread()
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("CPU affinity: %w", err)
	}
	if err := pin(0, cpu); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return sync.OnceFunc(func() {
		if unix.SchedSetaffinity(0, &was) == nil {
			runtime.UnlockOSThread()
		} // else: the goroutine's exit ends the pinned thread
	}), nil
}

// needCPUs skips a benchmark that pins on a machine with one CPU: its
// sender and receive side would share it and its figures would mean little.
func needCPUs(b *testing.B) {
	if runtime.NumCPU() <= receiveCPU {
		b.Skipf("needs CPUs %d and %d for the sender and the receive side, have %d CPU(s)", senderCPU, receiveCPU, runtime.NumCPU())
	}
}

// flood is what the AF_XDP sender sends: 64-byte UDP frames (60 bytes on
// the wire plus FCS) from the peer to port 9 of dst.
type flood struct {
	dst   netip.Addr
	rate  int // frames per second; 0 sends as fast as it can
	count int // frames to send; 0 sends until stopped
}

// paceBatch is the most frames the paced sender puts on the wire at once,
// far below veth's 256-frame ring.
const paceBatch = 16

// sender is an AF_XDP socket on the peer sending one frame over and over,
// on a thread of its own pinned to the sender's CPU. It is the fastest
// sender this machine has (the kernel's UDP path is slower), and its
// frames need no ARP, so both receivers see exactly the same traffic.
//
// One sender serves a lab's runs: a queue freed by closing an AF_XDP
// socket cannot be bound again at once (the kernel releases it from a
// work queue: EBUSY).
type sender struct {
	l         *lab.Lab
	sock      *xdp.Socket
	umem      *xdp.Umem
	idle      int          // free frames when nothing is in flight
	done      atomic.Bool  // stop asked
	completed atomic.Int64 // frames the kernel has finished sending
	finished  atomic.Bool  // all of flood.count completed
	wg        sync.WaitGroup
}

// newSender opens the sender's socket on the peer's end of the lab; it is
// closed when b ends.
func newSender(b *testing.B, l *lab.Lab) *sender {
	s := &sender{l: l}
	require.NoError(b, l.Peer.Do(func() (err error) {
		if s.umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 2048, FrameSize: 2048}); err != nil {
			return err
		}
		// Half the frames sit unused on the fill ring (nothing is steered
		// to the peer); the other half serve TX, sent 256 per sendto.
		s.sock, err = xdp.NewSocket(s.umem, xdp.SocketConfig{Ifindex: l.Peer.Ifindex, Mode: xdp.BindCopy, FillSize: 2048})
		return err
	}))
	s.idle = s.sock.Frames.FreeCount()
	b.Cleanup(func() {
		s.sock.Close()
		s.umem.Close()
	})
	return s
}

// start sends f until f.count frames are sent, stop is called, or the time
// limit passes.
func (s *sender) start(b *testing.B, f flood) {
	frame := testframe.UDP{
		SrcMAC: s.l.Peer.MAC, DstMAC: s.l.Local.MAC,
		Src: netip.AddrPortFrom(s.l.Peer.Addr.Addr(), 5000), Dst: netip.AddrPortFrom(f.dst, discardPort),
		Payload: make([]byte, 18), // 14+20+8+18 = 60 bytes, the Ethernet minimum
	}.Build()
	s.done.Store(false)
	s.completed.Store(0)
	s.finished.Store(false)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		unpin, err := pinThread(senderCPU)
		if err != nil {
			b.Errorf("sender: %v", err)
			return
		}
		defer unpin()
		s.run(b, f, frame)
	}()
}

func (s *sender) run(b *testing.B, f flood, frame []byte) {
	start := time.Now()
	submitted := 0
	for !s.done.Load() && time.Since(start) < timeLimit {
		s.completed.Add(int64(s.sock.Reap(512)))
		if f.count > 0 && int(s.completed.Load()) == f.count {
			s.finished.Store(true)
			return
		}
		want := 256
		if f.rate > 0 {
			due := int(time.Since(start).Seconds()*float64(f.rate)) - submitted
			want = min(want, paceBatch, due)
		}
		if f.count > 0 {
			want = min(want, f.count-submitted)
		}
		if want <= 0 {
			// All on the ring: retry what a busy kernel left there.
			if f.count > 0 && submitted == f.count && !s.kick(b) {
				return
			}
			continue
		}
		idx, n := s.sock.TX.Reserve(uint32(min(want, s.sock.Frames.FreeCount())))
		for i := range n {
			addr, _ := s.sock.Frames.Alloc(xdp.OwnerTX)
			copy(s.umem.Frame(addr), frame)
			s.sock.TX.Set(idx+i, xdp.Desc{Addr: addr, Len: uint32(len(frame))})
		}
		s.sock.TX.Submit(n)
		submitted += int(n)
		if !s.kick(b) {
			return
		}
	}
}

// kick asks the kernel to send what the TX ring holds.
func (s *sender) kick(b *testing.B) bool {
	if err := s.sock.Kick(); err != nil {
		b.Errorf("sender: %v", err)
		return false
	}
	return true
}

// stop stops sending and returns how many frames the kernel finished
// sending (completions: frames that left the peer's veth). It waits, for
// at most a second, for the frames still in flight, so that the next start
// counts only its own.
func (s *sender) stop() int {
	s.done.Store(true)
	s.wg.Wait()
	for t0 := time.Now(); s.sock.Frames.FreeCount() < s.idle && time.Since(t0) < time.Second; {
		s.completed.Add(int64(s.sock.Reap(512)))
		s.sock.Kick()
	}
	return int(s.completed.Load())
}
