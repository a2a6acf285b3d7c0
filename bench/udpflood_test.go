package main

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// floodRate is the paced sender's rate, frames per second: the kernel
// loses nothing at it on the lab (at 150k it dropped a few in one run of
// three, at 250k it runs out of CPU 1 in the "wake" case), so CPU per
// packet compares the same work on both sides.
const floodRate = 120_000

// BenchmarkUDPFlood measures the receive side's CPU per packet: the
// AF_XDP sender (on the peer, pinned to CPU 0) sends b.N 64-byte UDP
// datagrams at floodRate, in bursts of 16, to port 9 of each address on
// the same veth end. What does it cost to get them into an application?
//   - xdpnet: StackAddr:9, the discard endpoint, drained by the poller's
//     OnRound hook. The poller is driven by a loop on one locked thread:
//     Poll while frames come, poll(2) on the socket when none do.
//   - kernel: Local's kernel address:9, a UDP socket read with blocking
//     recvmmsg(2), 64 datagrams at most per call (the poller's batch), on
//     one locked thread.
//
// Both receive threads do all their work on one thread, blocking in one
// syscall when idle, and are pinned to CPU 1. Go's netpoller is not used:
// it would wake a second, unpinned thread per idle spell and hand the
// goroutine back to the first, a cost the receive thread's figure would
// not show. golang.org/x/net's ReadBatch is not in go.mod, so recvmmsg is
// called directly.
//
// Fair CPU accounting is the crux. veth processes received frames in NAPI
// (the XDP program; then the copy into the AF_XDP socket, or the kernel's
// IP and UDP input up to the socket queue) on the CPU that transmitted
// them, in softirq, and this kernel (no IRQ_TIME_ACCOUNTING) bills softirq
// time to whichever thread it interrupts: the sender. So the benchmark
// switches Local's veth to threaded NAPI: that work runs in a kernel
// thread, napi/<link>-<id>, pinned to CPU 1 as well, and its CPU time is
// exact. The thread runs at SCHED_FIFO 50 (the priority PREEMPT_RT gives
// interrupt threads), so it takes precedence over the receive thread as
// softirq does; at the default priority the scheduler often let the
// receive thread run first, and veth's 256-frame ring overflowed (both
// sides lost packets at 100–250k pps). The receive side's CPU per packet
// (cpu-ns/pkt) is that thread's plus the receive thread's, both from
// schedstat (the scheduler's runtime, in ns), divided by the packets the
// application received; napi-ns/pkt and thread-ns/pkt are the split, and
// napi-runs/kpkt and thread-runs/kpkt count how often each was put on the
// CPU (wakeups, and returns from preemption) per 1000 packets. other-ns/pkt
// is what the rest of the process (the Go runtime; not the sender) spent
// meanwhile, for reference: it is not in cpu-ns/pkt.
//
// Each side runs with veth's NAPI woken two ways (see coalescing): by
// every burst, veth's default, and by a 50 µs timer, as a NIC coalesces
// interrupts. Both sides get the same frames from the same sender, the
// same XDP program (the kernel's pass with XDP_PASS), the same NAPI
// thread, the same CPU. The kernel socket gets an 8 MiB receive buffer
// (more than xdpnet's 2048-frame RX ring holds), so that neither loses for
// want of queue.
//
// sent counts the frames the sender's kernel completed, rcvd those the
// application got, lost the difference; veth-drops are the frames veth
// dropped because NAPI fell behind (before any XDP program ran),
// queue-drops those the receive queue dropped (AF_XDP RX ring or fill
// ring, the endpoint's queue; or the socket buffer). A queue drop on the
// xdpnet side, a packet the sender counted as sent that the stack lost,
// is reported with a warning: it comes with a busy machine, and a
// benchmark never fails on one.
//
// Target (issue 3): xdpnet ≤ 0.5× the kernel's receive CPU per packet,
// with no packet lost that the sender counted as sent.
func BenchmarkUDPFlood(b *testing.B) {
	needCPUs(b)
	// Spare Ps: the sender and the receive thread each hold one, and one
	// coming back from a blocking syscall must find one free at once.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	l := lab.New(b, lab.Config{Mode: lab.Native})
	s := newStack(b, l) // attaches the steering program: veth now has NAPI
	napi := threadedNAPI(b, l, receiveCPU)
	fifo := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 50}
	require.NoError(b, unix.SchedSetAttr(napi, &fifo, 0), "NAPI thread to SCHED_FIFO")
	k := newKernelSink(b, l)
	x := &stackSink{stack: s, t0: time.Now()}
	tx, err := newSender(l)
	require.NoError(b, err)
	b.Cleanup(tx.close)
	for _, c := range coalescing {
		b.Run(c.name, func(b *testing.B) {
			l.Local.Run(b, "sh", "-c", fmt.Sprintf("cd /sys/class/net/%s && echo %d > napi_defer_hard_irqs && echo %d > gro_flush_timeout",
				l.Local.Link, c.deferIRQs, c.flushTimeout.Nanoseconds()))
			compare(b, []string{"cpu-ns/pkt", "napi-ns/pkt", "thread-ns/pkt"},
				func(b *testing.B) map[string]float64 { return floodOnce(b, l, tx, napi, k, kernelAddr(l)) },
				func(b *testing.B) map[string]float64 {
					m := floodOnce(b, l, tx, napi, x, l.StackAddr)
					if m["queue-drops"] > 0 {
						// UDP may drop under overload, and a busy machine
						// overloads the receiver (the kernel dropped too in
						// such runs): a figure to report, not a failure.
						b.Logf("warning: xdpnet's socket queue dropped %v datagrams the sender sent (is the machine busy?)", m["queue-drops"])
					}
					return m
				})
		})
	}
}

// coalescing are the ways veth's NAPI is woken in BenchmarkUDPFlood.
var coalescing = []struct {
	name         string
	deferIRQs    int
	flushTimeout time.Duration
}{
	// veth's default: a frame the peer sends wakes the NAPI thread if it
	// sleeps.
	{"wake", 0, 0},
	// The kernel's software interrupt coalescing (napi_defer_hard_irqs,
	// gro_flush_timeout): after a poll that found work, NAPI is not woken
	// by frames but polled again by a timer, like a NIC with rx-usecs 50.
	{"coalesce-50us", 2, 50 * time.Microsecond},
}

// sink is a receive side of the flood.
type sink interface {
	// step takes the datagrams that have arrived, or waits up to sinkWait
	// for some.
	step() error
	// received is how many datagrams the application has had so far.
	received() int
	// drops is how many datagrams the receive queue (AF_XDP RX ring, or
	// socket buffer) has dropped so far. Call it off the measuring thread:
	// it may switch namespaces.
	drops(b *testing.B) int
}

// sinkWait bounds a sink's wait, so a run notices lost packets.
const sinkWait = 10 * time.Millisecond

// quiet is how long a run waits, once the sender is done, for packets that
// might still arrive, before it counts them lost.
const quiet = 200 * time.Millisecond

// floodOnce sends b.N datagrams at floodRate to port 9 of dst, received
// by rx, and reports what the receive side spent.
func floodOnce(b *testing.B, l *lab.Lab, tx *sender, napi int, rx sink, dst netip.Addr) map[string]float64 {
	f := flood{dst: dst, rate: floodRate, count: b.N}
	veth0, queue0 := vethDrops(b, l), rx.drops(b)
	unpin, err := pinThread(receiveCPU)
	require.NoError(b, err)
	defer unpin()
	self, tid := os.Getpid(), unix.Gettid()

	b.ResetTimer()
	got0 := rx.received()
	napi0, thread0, proc0 := threadSched(b, napi, napi), threadSched(b, self, tid), lab.ProcessCPU()
	start := time.Now()
	tx.start(f)
	defer tx.stop() // on a failure; stop may be called again
	last, got := start, 0
	for got < f.count {
		if err := rx.step(); err != nil {
			b.Fatalf("receive: %v", err)
		}
		now := time.Now()
		if n := rx.received() - got0; n > got {
			got, last = n, now
		}
		if tx.finished.Load() && now.Sub(last) > quiet {
			break // the rest will not come
		}
		if now.Sub(start) > timeLimit {
			b.Fatalf("received %d of %d in %v (sender finished: %v)", got, f.count, timeLimit, tx.finished.Load())
		}
	}
	napiSt := threadSched(b, napi, napi).sub(napi0)
	threadSt := threadSched(b, self, tid).sub(thread0)
	proc := lab.ProcessCPU() - proc0
	b.StopTimer()
	sent, err := tx.stop()
	require.NoError(b, err)
	unpin()
	veth, queue := vethDrops(b, l)-veth0, rx.drops(b)-queue0
	other := proc - threadSt.run - time.Duration(tx.cpu.Load())
	per := func(x float64) float64 { return x / float64(max(got, 1)) }
	b.ReportMetric(0, "ns/op") // wall time per packet is the sender's pace
	return report(b, map[string]float64{
		"cpu-ns/pkt":       per(float64(napiSt.run + threadSt.run)),
		"napi-ns/pkt":      per(float64(napiSt.run)),
		"thread-ns/pkt":    per(float64(threadSt.run)),
		"other-ns/pkt":     per(float64(other)),
		"napi-runs/kpkt":   1000 * per(float64(napiSt.slices)),
		"thread-runs/kpkt": 1000 * per(float64(threadSt.slices)),
		"sent":             float64(sent),
		"rcvd":             float64(got),
		"lost":             float64(sent - got),
		"veth-drops":       float64(veth),
		"queue-drops":      float64(queue),
		"pkts/s":           float64(got) / last.Sub(start).Seconds(),
	})
}

// stackSink is xdpnet's receive side: the stack's poller, driven by the
// calling thread, with the discard service counting.
type stackSink struct {
	*stack
	t0 time.Time // the poller's clock starts here
}

func (x *stackSink) step() error {
	n, err := x.Poll(time.Since(x.t0))
	if err != nil || n > 0 {
		return err
	}
	return x.dev.Links()[0].Wait(sinkWait)
}

func (x *stackSink) received() int { return int(x.svc.Discarded()) }

func (x *stackSink) drops(b *testing.B) int {
	st, err := x.dev.Links()[0].Socket().Stats()
	require.NoError(b, err)
	return int(st.RxDropped + st.RxRingFull + x.UDP().Stats().RcvbufErrors)
}

// kernelSink is the kernel's receive side: a blocking UDP socket read with
// recvmmsg(2).
type kernelSink struct {
	l    *lab.Lab
	fd   int
	n    int
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
	bufs []byte
}

const (
	kernelBatch   = 64 // datagrams per recvmmsg, as the poller's batch
	kernelBufSize = 2048
	kernelRcvbuf  = 8 << 20 // SO_RCVBUFFORCE: past net.core.rmem_max
)

func newKernelSink(b *testing.B, l *lab.Lab) *kernelSink {
	k := &kernelSink{
		l:    l,
		msgs: make([]unix.Mmsghdr, kernelBatch),
		iovs: make([]unix.Iovec, kernelBatch),
		bufs: make([]byte, kernelBatch*kernelBufSize),
	}
	for i := range k.msgs {
		k.iovs[i].Base = &k.bufs[i*kernelBufSize]
		k.iovs[i].SetLen(kernelBufSize)
		k.msgs[i].Hdr.Iov = &k.iovs[i]
		k.msgs[i].Hdr.SetIovlen(1)
	}
	require.NoError(b, l.Local.Do(func() (err error) {
		if k.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(k.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, kernelRcvbuf); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		tv := unix.NsecToTimeval(sinkWait.Nanoseconds())
		if err := unix.SetsockoptTimeval(k.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
		return unix.Bind(k.fd, &unix.SockaddrInet4{Addr: kernelAddr(l).As4(), Port: discardPort})
	}))
	b.Cleanup(func() { unix.Close(k.fd) })
	return k
}

func (k *kernelSink) step() error {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(k.fd), uintptr(unsafe.Pointer(&k.msgs[0])), kernelBatch, unix.MSG_WAITFORONE, 0, 0)
	switch e {
	case 0:
		k.n += int(n)
	case unix.EAGAIN, unix.EINTR: // SO_RCVTIMEO passed
	default:
		return fmt.Errorf("recvmmsg: %w", e)
	}
	return nil
}

func (k *kernelSink) received() int { return k.n }

func (k *kernelSink) drops(b *testing.B) int {
	var snmp []byte
	require.NoError(b, k.l.Local.Do(func() (err error) {
		snmp, err = os.ReadFile("/proc/thread-self/net/snmp") // the namespace's
		return err
	}))
	// Two lines: "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors ..." and values.
	var names []string
	for _, line := range strings.Split(string(snmp), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RcvbufErrors"); i > 0 && i < len(f) {
			n, err := strconv.Atoi(f[i])
			require.NoError(b, err)
			return n
		}
	}
	b.Fatalf("no Udp RcvbufErrors in /proc/net/snmp:\n%s", snmp)
	return 0
}

// vethDrops is how many frames the peer's veth end has dropped so far
// because Local's NAPI ring (256 frames) was full: NAPI fell behind.
func vethDrops(b *testing.B, l *lab.Lab) int {
	var n uint64
	require.NoError(b, l.Peer.Do(func() error {
		link, err := netlink.LinkByIndex(l.Peer.Ifindex)
		if err == nil {
			n = link.Attrs().Statistics.TxDropped
		}
		return err
	}))
	return int(n)
}
