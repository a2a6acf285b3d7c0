package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// A workload is one row group of the table: what a client does against
// a system's service, and the metrics it reports.
type workload struct {
	name string
	// what says what the workload does, for -list and the README.
	what string
	// unit is what the client's progress counts: "trans", "conns",
	// "bytes", or "" for none.
	unit string
	// metrics are the rows the workload fills, in order (the CPU rows
	// follow them).
	metrics []string
	// svc is what the workload needs of a system: a system that does
	// not serve it has no cell (see applicable).
	svc service
	run func(ctx context.Context, env *env, sys system, progress func(int64)) (measured, error)
}

// applicable says whether w can run on the system named sys.
func applicable(w workload, sys string) bool {
	for _, s := range newSystems() {
		if s.name() == sys {
			return s.serves(w.svc)
		}
	}
	return false
}

// measured is what one run of a workload measured: its metrics, and the
// latency histogram's buckets of a workload that times transactions.
type measured struct {
	metrics map[string]float64
	latency []bucket
	warning string
}

// env is what a workload runs with.
type env struct {
	lab  *lab.Lab
	d    time.Duration // each cell's measured time (-time)
	peer clientRunner  // where the clients run: lab's Peer, or a remote host
	// clientsHere says the clients run on this machine, so that their
	// CPU time is not other processes' (see runner.cell).
	clientsHere bool
	// tx is the ring workload's flood sender on the lab's Peer, opened
	// by its first cell (see flood) and closed by closeFlood: a queue
	// freed by closing an AF_XDP socket cannot be bound again at once.
	tx *sender
}

// flood is the run's flood sender, opened on first use.
func (e *env) flood() (*sender, error) {
	if e.tx == nil {
		if e.lab.Peer == nil {
			return nil, errors.New(ringTwoHosts)
		}
		tx, err := newSender(e.lab)
		if err != nil {
			return nil, fmt.Errorf("the flood sender on the peer: %w", err)
		}
		e.tx = tx
	}
	return e.tx, nil
}

// closeFlood closes the flood sender, if a cell opened it.
func (e *env) closeFlood() {
	if e.tx != nil {
		e.tx.close()
		e.tx = nil
	}
}

// ringTwoHosts is why two-host runs leave the ring workload out.
const ringTwoHosts = "left out with two hosts: its flood sender is an AF_XDP socket on the lab's peer end"

// workloadsFor are the workloads a run can have: with two hosts, all but
// the ring workload's.
func workloadsFor(twoHosts bool) []workload {
	if !twoHosts {
		return workloads
	}
	return slices.DeleteFunc(slices.Clone(workloads), func(w workload) bool { return w.svc == svcRing })
}

// labOwner is a system on a lab of its own, whose peer runs its clients
// (gVisor, kernel-offloads): such a system needs this machine.
type labOwner interface{ clientLab() *lab.Lab }

// clientsFor is where sys's clients run: the shared peer, or the
// system's own lab's (a labOwner's).
func (e *env) clientsFor(sys system) clientRunner {
	if o, ok := sys.(labOwner); ok {
		return nsRunner{o.clientLab().Peer}
	}
	return e.peer
}

// The CPU rows of every cell.
const (
	cpuServer  = "cpu-server-s"  // this process: the system's servers
	cpuClient  = "cpu-client-s"  // the peer's client process
	cpuSoftirq = "cpu-softirq-s" // the machine's softirq time, every CPU
	cpuOther   = "cpu-other-s"   // every other process: the machine is shared
)

// higher says which metrics are better higher; every other one is
// better lower.
var higher = map[string]bool{"trans/s": true, "Gbit/s": true, "conns/s": true, "MB/s": true, "pps": true, "sent-pps": true, "Mpps": true}

var (
	rrMetrics  = []string{"trans/s", "p50-µs", "p90-µs", "p99-µs", "p99.9-µs"}
	crrMetrics = []string{"conns/s", "p50-µs", "p99-µs"}
	// ppsMetrics: the datagrams the system's server got per second of
	// sending, the share of those sent it did not get, and what the
	// client sent.
	ppsMetrics = []string{"pps", "loss-%", "sent-pps"}
)

// connsMax bounds BenchmarkSockConnect's connections per run, whatever
// b.N. The client closes first, so its kernel keeps each connection in
// TIME-WAIT for 60 s, and it can reuse such a port early (tcp_tw_reuse,
// a second on) only towards a server that sends TCP timestamps, as the
// kernel and xdpnet do. connect(2) takes the even ports of the range
// first; once TIME-WAITs fill them (before xdpnet sent timestamps, or
// within that second) it searches the whole range for every connect,
// and a run that did so fell to ~300 connections/s. So each client count
// gets a lab of its own, and a lab's runs (b.N's probe runs and the
// measured one) stay well under the 32k even ports.
const connsMax = 12000

// crrCellMax bounds the connect workloads' connections per cell of the
// command. Their cells share one lab: tcp-crr and tcp-crr-64 make up to
// 30,000 connections each to the kernel's echo (3 repetitions on 2
// kernel systems), which early reuse keeps from filling the port range
// (the full run of 2026-12-06 kept its rates through all of them).
const crrCellMax = 5000

// workloads are the bench command's workloads, in the table's order.
var workloads = []workload{
	clientWorkload("tcp-rr-1", "1-byte TCP request/response, one in flight on one connection", "trans", rrMetrics,
		clientSpec{Mode: "rr", Size: 1}, svcEcho),
	clientWorkload("tcp-rr-1-pinned", "tcp-rr-1 with this process on CPU 0 and the client on CPU 1, as two hosts keep them apart", "trans", rrMetrics,
		clientSpec{Mode: "rr", Size: 1, ClientCPU: clientCPU + 1}, svcEcho),
	clientWorkload("tcp-rr-1k", "1 KiB TCP request/response", "trans", rrMetrics,
		clientSpec{Mode: "rr", Size: 1 << 10}, svcEcho),
	clientWorkload("tcp-rr-16k", "16 KiB TCP request/response", "trans", rrMetrics,
		clientSpec{Mode: "rr", Size: 16 << 10}, svcEcho),
	clientWorkload("tcp-send-1", "the system sends one TCP stream (the client reads chargen)", "bytes", []string{"Gbit/s"},
		clientSpec{Mode: "read", Par: 1}, svcChargen),
	clientWorkload("tcp-send-4", "the system sends 4 TCP streams at once", "bytes", []string{"Gbit/s"},
		clientSpec{Mode: "read", Par: 4}, svcChargen),
	clientWorkload("tcp-recv-1", "the system receives one TCP stream (the client writes to discard)", "bytes", []string{"Gbit/s"},
		clientSpec{Mode: "write", Par: 1}, svcDiscard),
	clientWorkload("tcp-recv-4", "the system receives 4 TCP streams at once", "bytes", []string{"Gbit/s"},
		clientSpec{Mode: "write", Par: 4}, svcDiscard),
	clientWorkload("tcp-crr", "connect, a 1-byte request and its echo, close; one client, at most 5000 connections a cell", "conns",
		crrMetrics, clientSpec{Mode: "crr", Par: 1, N: crrCellMax}, svcEcho),
	clientWorkload("tcp-crr-64", "tcp-crr with 64 clients at once, at most 5000 connections a cell", "conns",
		crrMetrics, clientSpec{Mode: "crr", Par: 64, N: crrCellMax}, svcEcho),
	clientWorkload("udp-rr-64", "64-byte UDP request/response, one in flight", "trans", rrMetrics,
		clientSpec{Mode: "udprr", Size: 64}, svcUDPEcho),
	clientWorkload("udp-rr-64-pinned", "udp-rr-64 with this process on CPU 0 and the client on CPU 1", "trans", rrMetrics,
		clientSpec{Mode: "udprr", Size: 64, ClientCPU: clientCPU + 1}, svcUDPEcho),
	clientWorkload("udp-pps-64", "64-byte UDP datagrams to a counting discard server, as fast as the client's socket sends: what the system received", "datagrams",
		ppsMetrics, clientSpec{Mode: "udpsend", Size: 64}, svcUDPDiscard),
	clientWorkload("udp-pps-1472", "udp-pps-64 with 1472-byte datagrams (1500-byte IP packets)", "datagrams",
		ppsMetrics, clientSpec{Mode: "udpsend", Size: 1472}, svcUDPDiscard),
	{
		name:    "idle",
		what:    "the stack with its servers and one idle connection: this process's CPU",
		metrics: []string{"cpu-%"},
		svc:     svcEcho,
		run:     idleWorkload,
	},
	{
		name: "rxdrop",
		what: "the ring layer alone, xdp/ (on xdpnet) against asavie/xdp: an AF_XDP socket drops a flood of 64-byte frames, drained every 500 µs (lab only)",
		unit: "", metrics: []string{"Mpps", "cpu-ns/frame"},
		svc: svcRing,
		run: func(ctx context.Context, env *env, sys system, _ func(int64)) (measured, error) {
			tx, err := env.flood()
			if err != nil {
				return measured{}, err
			}
			m, err := rxDrop(ctx, env.lab, tx, sys.name(), env.d)
			return measured{metrics: m}, err
		},
	},
}

// clientWorkload is a workload run by one client process on the peer's
// kernel, spec against svc for the cell's time. What a discard server
// got is checked against what the client sent (echo and chargen are
// checked byte for byte by the client).
func clientWorkload(name, what, unit string, metrics []string, spec clientSpec, svc service) workload {
	return workload{name: name, what: what, unit: unit, metrics: metrics, svc: svc,
		run: func(ctx context.Context, env *env, sys system, progress func(int64)) (measured, error) {
			s := spec
			s.Server, s.Time, s.Via = sys.addr(svc).String(), env.d, viaKernel
			if s.ClientCPU > 0 {
				unpin, err := pinProcess(serverCPU)
				if err != nil {
					return measured{}, err
				}
				defer unpin()
			}
			bytes0, datagrams0 := discarded(sys), served.sinkDatagrams.Load()
			r, err := env.clientsFor(sys).run(ctx, s, progress)
			if err != nil {
				return measured{}, err
			}
			switch svc {
			case svcDiscard:
				if got, sent := discarded(sys)-bytes0, int64(r.metrics["bytes"]); got != sent {
					return measured{}, fmt.Errorf("the discard server read %d bytes, the client wrote %d", got, sent)
				}
			case svcUDPDiscard:
				if err := received(r.metrics, settled(&served.sinkDatagrams)-datagrams0); err != nil {
					return measured{}, err
				}
			}
			r.metrics[cpuClient] = r.cpu.Seconds()
			return measured{metrics: r.metrics, latency: r.latency}, nil
		}}
}

// discarded is what sys's discard server has read: the poller-side
// services' own count on xdpnet-inline, else the Go servers' (served).
func discarded(sys system) int64 {
	if x, ok := sys.(*xdpnetSystem); ok && x.inline {
		return x.inlineDiscarded()
	}
	return served.discardBytes.Load()
}

// settled is n once it has not moved for settleQuiet (the datagrams in
// flight when the client stopped have arrived or been dropped), or after
// settleMax.
func settled(n *atomic.Int64) int64 {
	last, deadline := n.Load(), time.Now().Add(settleMax)
	for time.Now().Before(deadline) {
		time.Sleep(settleQuiet)
		now := n.Load()
		if now == last {
			break
		}
		last = now
	}
	return last
}

const (
	settleQuiet = 20 * time.Millisecond
	settleMax   = time.Second
)

// received adds a UDP sink's rows to m, what a udpsend client measured
// ("sent", "send-s"), from got, the datagrams the server counted.
func received(m map[string]float64, got int64) error {
	sent := int64(m["sent"])
	if got > sent || sent == 0 {
		return fmt.Errorf("the discard server counted %d datagrams, the client sent %d", got, sent)
	}
	m["pps"] = float64(got) / m["send-s"]
	m["loss-%"] = 100 * float64(sent-got) / float64(sent)
	return nil
}

// The CPUs of a pinned cell: this process (the system's servers and
// pollers) on one, the client on the other, as two hosts keep them
// apart. Unpinned, the scheduler may put a kernel client on the vCPU
// where a poller spins, and the client then waits for the spin to end
// (request/response p50 moved 0.75× → 1.06× of the kernel between two
// quiet runs here).
const (
	serverCPU = 0
	clientCPU = 1
)

// pinProcess pins every thread of this process to cpu (taskset -a), and
// returns what puts them back on every CPU; threads made meanwhile
// inherit the pinning and are put back too.
func pinProcess(cpu int) (unpin func(), err error) {
	if runtime.NumCPU() < 2 {
		return nil, fmt.Errorf("pinning the client apart needs 2 CPUs, have %d", runtime.NumCPU())
	}
	pid := strconv.Itoa(os.Getpid())
	if out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), pid).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("taskset: %w: %s", err, out)
	}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	return func() { exec.Command("taskset", "-a", "-p", "-c", all, pid).Run() }, nil
}

// Idle measurement: the stack settles for idleSettle before its CPU time
// is read.
const idleSettle = 500 * time.Millisecond

// idleSlack is how much longer than the measurement the idle client
// holds its connection: the time its "connected" progress line takes to
// reach this process (a progressEvery tick, and a control connection's
// hop in two-host mode).
const idleSlack = time.Second

// idleWorkload measures this process's CPU for the cell's time while the
// peer's idle client (mode idle) holds one connection to sys's echo
// server, from idleSettle after the client said it made its round trip.
func idleWorkload(ctx context.Context, env *env, sys system, _ func(int64)) (measured, error) {
	spec := clientSpec{Mode: "idle", Server: sys.addr(svcEcho).String(), Via: viaKernel, Time: idleSettle + env.d + idleSlack}
	connected := make(chan struct{})
	var once sync.Once
	type result struct {
		r   clientRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := env.clientsFor(sys).run(ctx, spec, func(n int64) {
			if n > 0 {
				once.Do(func() { close(connected) })
			}
		})
		done <- result{r, err}
	}()
	select {
	case <-connected:
	case res := <-done:
		return measured{}, errors.Join(res.err, errors.New("the idle client ended before its connection was up"))
	}
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
	}
	cpu, wall := idleCPU(ctx, env.d)
	res := <-done
	if res.err != nil {
		return measured{}, res.err
	}
	return measured{metrics: map[string]float64{"cpu-%": 100 * float64(cpu) / float64(wall), cpuClient: res.r.cpu.Seconds()}}, ctx.Err()
}

// idleCPU is this process's CPU time over d of idleness, or until ctx
// ends, and the wall time it covered.
func idleCPU(ctx context.Context, d time.Duration) (cpu, wall time.Duration) {
	cpu0, t0 := lab.ProcessCPU(), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return lab.ProcessCPU() - cpu0, time.Since(t0)
}
