package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/internal/testsupport/testframe"
	"github.com/xdpnet/xdpnet/xdp"
)

// The AF_XDP flood sender, thread pinning and exact thread CPU time:
// shared by the rxdrop workload of the command and the go-test
// benchmarks.

// The CPUs of the 2-vCPU lab machine: the sender's, and the receive side's.
const (
	senderCPU  = 0
	receiveCPU = 1
)

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
// thread goes back to the Go scheduler free to run anywhere. The sender
// gets CPU 0 and the receive side CPU 1: see BenchmarkRxDrop and
// BenchmarkUDPFlood for why CPU figures need them apart.
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

// schedstat is a thread's line in /proc/<pid>/task/<tid>/schedstat.
type schedstat struct {
	// run is the thread's exact CPU time: the scheduler's sum_exec_runtime.
	// Unlike getrusage's user/system split it is not tick-sampled, and it
	// covers kernel threads, which getrusage cannot.
	run time.Duration
	// slices counts the times the thread was put on a CPU: its wakeups,
	// and its returns after preemption.
	slices int64
}

// sub is s less t: what the thread spent between the two readings.
func (s schedstat) sub(t schedstat) schedstat {
	return schedstat{run: s.run - t.run, slices: s.slices - t.slices}
}

// readSchedstat reads a schedstat file.
func readSchedstat(path string) (schedstat, error) {
	s, err := os.ReadFile(path)
	if err != nil {
		return schedstat{}, err
	}
	var st schedstat
	var wait int64
	if _, err := fmt.Sscan(string(s), &st.run, &wait, &st.slices); err != nil {
		return schedstat{}, fmt.Errorf("%s: %q: %w", path, s, err)
	}
	return st, nil
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
// frames need no ARP, so every receiver sees exactly the same traffic.
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
	cpu       atomic.Int64 // ns of CPU the sending thread spent in its last run
	err       error        // the last run's failure; read after wg.Wait
	wg        sync.WaitGroup
}

// newSender opens the sender's socket on the peer's end of the lab; the
// caller closes it.
func newSender(l *lab.Lab) (*sender, error) {
	s := &sender{l: l}
	err := l.Peer.Do(func() (err error) {
		if s.umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 2048, FrameSize: 2048}); err != nil {
			return err
		}
		// Half the frames sit unused on the fill ring (nothing is steered
		// to the peer); the other half serve TX, sent 256 per sendto.
		s.sock, err = xdp.NewSocket(s.umem, xdp.SocketConfig{Ifindex: l.Peer.Ifindex, Mode: xdp.BindCopy, FillSize: 2048})
		return err
	})
	if err != nil {
		if s.umem != nil {
			s.umem.Close()
		}
		return nil, fmt.Errorf("sender on %s: %w", l.Peer.Link, err)
	}
	s.idle = s.sock.Frames.FreeCount()
	return s, nil
}

// close closes the sender's socket; call it after stop.
func (s *sender) close() {
	s.sock.Close()
	s.umem.Close()
}

// start sends f until f.count frames are sent, stop is called, or the time
// limit passes. stop reports whether it failed.
func (s *sender) start(f flood) {
	frame := testframe.UDP{
		SrcMAC: s.l.Peer.MAC, DstMAC: s.l.Local.MAC,
		Src: netip.AddrPortFrom(s.l.Peer.Addr.Addr(), 5000), Dst: netip.AddrPortFrom(f.dst, discardPort),
		Payload: make([]byte, 18), // 14+20+8+18 = 60 bytes, the Ethernet minimum
	}.Build()
	s.done.Store(false)
	s.completed.Store(0)
	s.finished.Store(false)
	s.err = nil
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.send(f, frame); err != nil {
			s.err = fmt.Errorf("sender: %w", err)
		}
	}()
}

// send runs the sending loop on a thread pinned to the sender's CPU and
// records that thread's CPU time.
func (s *sender) send(f flood, frame []byte) error {
	unpin, err := pinThread(senderCPU)
	if err != nil {
		return err
	}
	defer unpin()
	st0, err0 := readSchedstat("/proc/thread-self/schedstat")
	err = s.run(f, frame)
	st1, err1 := readSchedstat("/proc/thread-self/schedstat")
	s.cpu.Store(int64(st1.run - st0.run))
	if err0 != nil || err1 != nil {
		err = errors.Join(err, fmt.Errorf("CPU time: %w", errors.Join(err0, err1)))
	}
	return err
}

// run is the sending loop: it keeps the TX ring full (or paced at
// f.rate) until done, f.count completed, or the time limit.
func (s *sender) run(f flood, frame []byte) error {
	start := time.Now()
	submitted := 0
	for !s.done.Load() && time.Since(start) < timeLimit {
		s.completed.Add(int64(s.sock.Reap(512)))
		if f.count > 0 && int(s.completed.Load()) == f.count {
			s.finished.Store(true)
			return nil
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
			if f.count > 0 && submitted == f.count {
				if err := s.sock.Kick(); err != nil {
					return err
				}
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
		if err := s.sock.Kick(); err != nil {
			return err
		}
	}
	return nil
}

// stop stops sending and returns how many frames the kernel finished
// sending (completions: frames that left the peer's veth), and why the
// run failed if it did. It waits, for at most a second, for the frames
// still in flight, so that the next start counts only its own. It may be
// called again.
func (s *sender) stop() (int, error) {
	s.done.Store(true)
	s.wg.Wait()
	for t0 := time.Now(); s.sock.Frames.FreeCount() < s.idle && time.Since(t0) < time.Second; {
		s.completed.Add(int64(s.sock.Reap(512)))
		s.sock.Kick()
	}
	return int(s.completed.Load()), s.err
}
