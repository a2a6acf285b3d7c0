package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/internal/testsupport/testframe"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// Shared by the benchmarks of this package: the lab's two servers, the
// AF_XDP sender, CPU pinning and exact CPU time.

// TestMain makes this binary the benchmarks' client process when it is
// one (clientMain), or the command when a test runs it (commandMain),
// and fails the run if a benchmark leaves a lab namespace behind.
func TestMain(m *testing.M) {
	clientMain()
	commandMain()
	lab.CheckNoLeaks(m)
}

// The CPUs of the 2-vCPU lab machine: the sender's, and the receive side's.
const (
	senderCPU  = 0
	receiveCPU = 1
)

// stack is xdpnet on the lab's Local end: the steering program in native
// mode and one poller on queue 0, answering ARP and ping for StackAddr and
// serving UDP echo and discard, and TCP echo, discard and chargen, from
// its OnRound hook: the same services as `xdpnet serve`.
type stack struct {
	*fastpath.Poller
	dev *nic.XDPDevice
	svc services.EchoDiscard
	tcp services.TCPServices
}

// newStack opens Local's link for xdpnet; the poller does not run until
// run is called or its owner drives Poll. Everything is closed when b ends.
func newStack(b *testing.B, l *lab.Lab) *stack {
	s := &stack{}
	require.NoError(b, l.Local.Do(func() (err error) {
		s.dev, err = nic.OpenXDP(nic.XDPConfig{Interface: l.Local.Link, Addrs: []netip.Addr{l.StackAddr}, Attach: steer.Native})
		return err
	}))
	b.Cleanup(func() { s.dev.Close() })
	var err error
	s.Poller, err = fastpath.New(fastpath.Config{
		Link: s.dev.Links()[0],
		IP:   ip.Config{Addr: netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits())},
	})
	require.NoError(b, err)
	b.Cleanup(s.Close)
	s.OnRound(func(now time.Duration) {
		s.svc.Serve(now)
		s.tcp.Serve(now)
	})
	require.NoError(b, s.svc.Bind(s.UDP()))
	require.NoError(b, s.tcp.Listen(s.TCP()))
	return s
}

// run runs the poller as xdpnet runs it (fastpath.Poller.Run: spin while
// frames come, block after an idle spell) on a goroutine of its own, until
// b ends.
func (s *stack) run(b *testing.B) {
	stop := s.Start()
	// Registered after newStack's: runs before the poller is closed.
	b.Cleanup(func() {
		if err := stop(); err != nil {
			b.Errorf("poller: %v", err)
		}
	})
}

// kernelEcho runs a Go UDP echo server on the kernel's address on Local's
// link, on a goroutine of its own, until b ends.
func kernelEcho(b *testing.B, l *lab.Lab) {
	c, err := listenKernelUDP(l.Local, echoPort)
	require.NoError(b, err)
	b.Cleanup(serveUDP(c, udpEcho))
}

// compare runs the kernel's side, then xdpnet's, as sub-benchmarks of b on
// the same lab; xdpnet's line also reports each of the named metrics as a
// ratio to the kernel's last figure (metric "<name>-x-kernel"). Each side
// returns the metrics it reported.
func compare(b *testing.B, ratios []string, kernel, xdpnet func(b *testing.B) map[string]float64) {
	var k map[string]float64
	b.Run("kernel", func(b *testing.B) { k = kernel(b) })
	b.Run("xdpnet", func(b *testing.B) {
		x := xdpnet(b)
		for _, name := range ratios {
			if k[name] > 0 {
				b.ReportMetric(x[name]/k[name], name+"-x-kernel")
			}
		}
	})
}

// report reports every metric of m on b and returns m.
func report(b *testing.B, m map[string]float64) map[string]float64 {
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
	return m
}

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

// threadSched is thread tid of process pid's schedstat (for a kernel
// thread, tid = pid).
func threadSched(b *testing.B, pid, tid int) schedstat {
	st, err := readSchedstat(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		b.Fatalf("thread CPU time: %v", err)
	}
	return st
}

// napiThread moves the receive processing of h's link from softirq into a
// kernel thread of its own. The link must have a NAPI instance (an XDP
// program attached, or GRO on), or the write fails with EIO.
func napiThread(b *testing.B, h *lab.Host) {
	// ip netns exec mounts the namespace's own /sys, where the link is.
	h.Run(b, "sh", "-c", "echo 1 > /sys/class/net/"+h.Link+"/threaded")
}

// threadedNAPI moves the receive processing of Local's veth from softirq
// into a kernel thread of its own (/sys/class/net/<link>/threaded), pins
// that thread to cpu and returns its pid. veth has a NAPI instance, and so
// a thread, only while an XDP program is attached (or GRO is on): call it
// after the steering program is attached.
func threadedNAPI(b *testing.B, l *lab.Lab, cpu int) int {
	napiThread(b, l.Local)
	procs, err := os.ReadDir("/proc")
	require.NoError(b, err)
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err == nil && strings.HasPrefix(string(comm), "napi/"+l.Local.Link+"-") {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		b.Fatalf("want one NAPI thread napi/%s-<id>, found pids %v", l.Local.Link, pids)
	}
	require.NoError(b, pin(pids[0], cpu))
	return pids[0]
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
	cpu       atomic.Int64 // ns of CPU the sending thread spent in its last run
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
		st0, err := readSchedstat("/proc/thread-self/schedstat")
		s.run(b, f, frame)
		st1, err1 := readSchedstat("/proc/thread-self/schedstat")
		if err != nil || err1 != nil {
			b.Errorf("sender CPU time: %v", errors.Join(err, err1))
		}
		s.cpu.Store(int64(st1.run - st0.run))
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
