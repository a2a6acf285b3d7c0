package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/xdpnet/xdpnet/internal/latency"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// The peer's clients. Every client is a process of its own in the peer's
// namespace, this same binary re-executed with clientEnv set (the bench
// command, or the test binary of the go-test benchmarks, whose TestMain
// hands over to clientMain): in the servers' process Go's netpoller
// would let one thread carry a kernel round trip without a wakeup, which
// no client on another host can do.

// timeLimit bounds every measured loop: a run that stalls fails by itself.
const timeLimit = 60 * time.Second

// clientEnv holds a client process's clientSpec, as JSON.
const clientEnv = "XDPNET_BENCH_CLIENT"

// viaKernel is the Via of a client on the peer's kernel stack.
const viaKernel = "kernel"

// peerStackAddr is the address of the xdpnet stack a client process
// opens on the peer's link, in the lab's /24 next to the peer's kernel
// (198.18.0.3).
var peerStackAddr = netip.MustParsePrefix("198.18.0.4/24")

// viaXDPNet is the Via of a client on an xdpnet stack of its own, opened
// on the peer's link at peerStackAddr.
func viaXDPNet(l *lab.Lab) string { return "xdpnet:" + l.Peer.Link }

// clientSpec is what one client process does. Its loops stop after N
// operations (N > 0) or after Time (Time > 0), whichever comes first.
// Without Time, N is a demand: not reaching it within timeLimit is an
// error; with Time, it is a cap.
type clientSpec struct {
	// Mode is what the client does:
	//   - rr: Size-byte TCP transactions on one connection, one in
	//     flight, after echoWarmup more: trans/s and latencies.
	//   - udprr: the same over UDP, one datagram each way.
	//   - udpsend: Size-byte datagrams to a UDP discard server, as fast
	//     as the socket takes them, N or until Time: sent, send-s.
	//   - read: Par connections read from chargen (N bytes in all, or
	//     until Time), checking every byte, then close: Gbit/s from the
	//     first connect on, and bytes.
	//   - write: Par connections write to discard (N bytes in all, or
	//     until Time), each then its FIN, and wait for the server's FIN:
	//     Gbit/s from the first connect on, and bytes (which the
	//     workload checks against what the server read).
	//   - crr: connect, a 1-byte request and its echo, close, N times or
	//     until Time; Par such loops at once: conns/s and the latencies
	//     of one connection's whole life.
	//   - idle: one connection, one 1-byte round trip, then held open,
	//     idle, until Time (see idleHold).
	//   - chargen: one connection reads at most N bytes from a tcpChargen
	//     server, for at most lossyTime, checking every byte: MB/s from
	//     the connection's establishment on (see chargenRead).
	Mode   string
	Server string // host:port
	N      int
	Par    int           // connections at once (read, write, crr); 0 is 1
	Size   int           // request or datagram size (rr, udprr, udpsend); 0 is 1
	Time   time.Duration // 0: timeLimit
	// Via is viaKernel (Go's net) or "xdpnet:<link>" (sockapi.Open on
	// link at peerStackAddr, polled as xdpnet runs by default).
	Via string
	// ClientCPU, if positive, pins the client process to CPU
	// ClientCPU-1 (taskset), apart from the stack's (see pinned).
	ClientCPU int `json:",omitempty"`
	// Progress makes the client print "client-progress: <ops>" lines
	// every progressEvery: transactions, bytes or connections so far.
	Progress bool
}

// progressEvery is how often a client reports its progress.
const progressEvery = 250 * time.Millisecond

// echoWarmup transactions run before the client's clock starts: ARP, and
// caches.
const echoWarmup = 1000

// ops counts a client's transactions, bytes or connections, for progress.
var ops atomic.Int64

// rtts is a client's latencies (rr, udprr, crr), which it prints as a
// "client-latency:" line for the plots' CDFs.
var rtts latency.Histogram

// keepLatencies records ds into rtts, after the measured loop.
func keepLatencies(ds []time.Duration) {
	for _, d := range ds {
		rtts.Record(d)
	}
}

// budget is when a client's loop stops: after n operations (n > 0) or at
// end.
type budget struct {
	n     int64
	end   time.Time
	timed bool // end is the spec's Time: n is a cap, not a demand
}

func newBudget(spec clientSpec) budget {
	d := timeLimit
	if spec.Time > 0 {
		d = min(d, spec.Time)
	}
	return budget{n: int64(spec.N), end: time.Now().Add(d), timed: spec.Time > 0}
}

// more says whether the loop that has done done operations goes on.
func (b budget) more(done int64) bool {
	return (b.n <= 0 || done < b.n) && time.Now().Before(b.end)
}

// short is the error of a loop that stopped at its end before its n.
func (b budget) short(done int64) error {
	if b.n > 0 && done < b.n && !b.timed {
		return fmt.Errorf("did %d of %d in %v", done, b.n, timeLimit)
	}
	return nil
}

// clientMain runs the client clientEnv describes, if it is set, prints
// its latencies ("client-latency: ns:count …", the histogram's non-empty
// buckets) if it has any and its result line ("client: k=v …"), and exits; it returns at once when
// clientEnv is not set.
func clientMain() {
	js := os.Getenv(clientEnv)
	if js == "" {
		return
	}
	var spec clientSpec
	err := json.Unmarshal([]byte(js), &spec)
	var m map[string]float64
	if err == nil {
		m, err = runSpec(spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "client %s %s: %v\n", spec.Mode, spec.Server, err)
		os.Exit(1)
	}
	if rtts.Count() > 0 {
		line := "client-latency:"
		for d, n := range rtts.Counts() {
			line += fmt.Sprintf(" %d:%d", d.Nanoseconds(), n)
		}
		fmt.Println(line)
	}
	line := "client:"
	for _, k := range slices.Sorted(maps.Keys(m)) {
		line += fmt.Sprintf(" %s=%g", k, m[k])
	}
	fmt.Println(line)
	os.Exit(0)
}

// runSpec runs one client.
func runSpec(spec clientSpec) (map[string]float64, error) {
	spec.Par, spec.Size = max(spec.Par, 1), max(spec.Size, 1)
	network := "tcp4"
	if spec.Mode == "udprr" || spec.Mode == "udpsend" {
		network = "udp4"
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, spec.Server)
	}
	if link, ok := strings.CutPrefix(spec.Via, "xdpnet:"); ok {
		s, err := sockapi.Open(sockapi.Config{Interface: link, Addr: peerStackAddr})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		dial = func(ctx context.Context) (net.Conn, error) { return s.DialContext(ctx, network, spec.Server) }
	} else if spec.Via != viaKernel {
		return nil, fmt.Errorf("unknown via %q", spec.Via)
	}
	if spec.Progress {
		go func() {
			for range time.Tick(progressEvery) {
				fmt.Printf("client-progress: %d\n", ops.Load())
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeLimit)
	defer cancel()
	switch spec.Mode {
	case "rr", "udprr":
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeLimit))
		return requestResponse(c, spec)
	case "udpsend":
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return udpSend(c, spec)
	case "read", "write":
		return bulk(ctx, dial, spec)
	case "crr":
		return connectRR(ctx, dial, spec)
	case "chargen":
		return chargenRead(ctx, dial, spec.N)
	case "idle":
		return idleHold(ctx, dial, spec)
	}
	return nil, fmt.Errorf("unknown mode %q", spec.Mode)
}

// requestResponse runs Size-byte transactions on c, one in flight, after
// echoWarmup more, and returns their rate and latencies. Each echo must
// be its request's, byte for byte. On a stream c, a response is read
// whole (io.ReadFull); on a datagram c, it is one datagram.
func requestResponse(c net.Conn, spec clientSpec) (map[string]float64, error) {
	_, stream := c.(interface{ CloseWrite() error })
	req, resp := make([]byte, spec.Size), make([]byte, spec.Size+1)
	for i := range req {
		req[i] = byte(i)
	}
	transact := func(i int64) (time.Duration, error) {
		req[0] = byte(i) // each echo must be this request's
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return 0, fmt.Errorf("request %d: %w", i, err)
		}
		var m int
		var err error
		if stream {
			m, err = io.ReadFull(c, resp[:spec.Size])
		} else {
			m, err = c.Read(resp)
		}
		if err != nil {
			return 0, fmt.Errorf("request %d: %w (the run is capped at %v)", i, err, timeLimit)
		}
		rtt := time.Since(t0)
		if !bytes.Equal(resp[:m], req) {
			return 0, fmt.Errorf("request %d: the %d-byte echo differs from the %d-byte request", i, m, spec.Size)
		}
		return rtt, nil
	}
	for i := range int64(echoWarmup) {
		if _, err := transact(i); err != nil {
			return nil, err
		}
	}
	rtts := make([]time.Duration, 0, max(spec.N, 1<<16))
	start, bud := time.Now(), newBudget(spec)
	for i := int64(0); bud.more(i); i++ {
		rtt, err := transact(i)
		if err != nil {
			return nil, err
		}
		rtts = append(rtts, rtt)
		ops.Add(1)
	}
	n := int64(len(rtts))
	if err := bud.short(n); err != nil {
		return nil, err
	}
	m := map[string]float64{"trans/s": float64(n) / time.Since(start).Seconds()}
	latencies(m, rtts)
	keepLatencies(rtts)
	return m, nil
}

// latencies adds the median, 90th, 99th and 99.9th percentiles and the
// mean of ds, in µs, to m. It sorts ds.
func latencies(m map[string]float64, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	m["p50-µs"] = us(ds[len(ds)/2])
	m["p90-µs"] = us(ds[len(ds)*90/100])
	m["p99-µs"] = us(ds[len(ds)*99/100])
	m["p99.9-µs"] = us(ds[len(ds)*999/1000])
	m["avg-µs"] = us(sum / time.Duration(len(ds)))
}

// bulk moves bytes over Par connections at once, each reading (mode
// "read") or writing ("write") its share of N, or until Time, and returns
// the Gbit/s of all.
func bulk(ctx context.Context, dial func(context.Context) (net.Conn, error), spec clientSpec) (map[string]float64, error) {
	start := time.Now()
	bud := newBudget(spec)
	errs := make(chan error, spec.Par)
	for i := range spec.Par {
		share := bud
		if bud.n > 0 {
			share.n = bud.n / int64(spec.Par)
			if i == 0 {
				share.n += bud.n % int64(spec.Par)
			}
		}
		go func() {
			c, err := dial(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(start.Add(timeLimit))
			if spec.Mode == "read" {
				errs <- readN(c, share)
			} else {
				errs <- writeN(c, share)
			}
		}()
	}
	var err error
	for range spec.Par {
		err = errors.Join(err, <-errs)
	}
	moved := ops.Load()
	return map[string]float64{"Gbit/s": float64(moved) * 8 / time.Since(start).Seconds() / 1e9, "bytes": float64(moved)}, err
}

// readN reads a chargen stream from c until bud ends, checking every
// byte.
func readN(c net.Conn, bud budget) error {
	c.SetReadDeadline(bud.end)
	buf := make([]byte, tcpBuffer)
	check := chargenCheck{want: chargenBuffer()}
	var got int64
	for bud.more(got) {
		want := int64(len(buf))
		if bud.n > 0 {
			want = min(want, bud.n-got)
		}
		m, err := c.Read(buf[:want])
		if cerr := check.next(buf[:m]); cerr != nil {
			return cerr
		}
		got += int64(m)
		ops.Add(int64(m))
		if errors.Is(err, os.ErrDeadlineExceeded) && bud.timed {
			return nil
		}
		if err != nil && bud.more(got) {
			return fmt.Errorf("read %d bytes: %w (the run is capped at %v)", got, err, timeLimit)
		}
	}
	return bud.short(got)
}

// writeN writes to c until bud ends, then its FIN, and waits for the
// server's.
func writeN(c net.Conn, bud budget) error {
	buf := make([]byte, tcpBuffer)
	var sent int64
	for bud.more(sent) {
		want := int64(len(buf))
		if bud.n > 0 {
			want = min(want, bud.n-sent)
		}
		m, err := c.Write(buf[:want])
		sent += int64(m)
		ops.Add(int64(m))
		if err != nil {
			return fmt.Errorf("wrote %d bytes: %w (the run is capped at %v)", sent, err, timeLimit)
		}
	}
	if err := bud.short(sent); err != nil {
		return err
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return err
	}
	if m, err := c.Read(buf); m != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the data: read %d bytes, %v; want the server's FIN", m, err)
	}
	return nil
}

// connectRR runs connections, Par at a time, N in all or until Time:
// each connects, sends 1 byte, reads its echo and closes (the client's
// FIN goes first, so the client's side keeps TIME-WAIT, as an HTTP/1.0
// client's would not; see BenchmarkSockConnect).
func connectRR(ctx context.Context, dial func(context.Context) (net.Conn, error), spec clientSpec) (map[string]float64, error) {
	var next atomic.Int64
	bud := newBudget(spec)
	lives := make([][]time.Duration, spec.Par)
	errs := make(chan error, spec.Par)
	start := time.Now()
	for i := range spec.Par {
		go func() {
			buf := []byte{0}
			for bud.more(next.Add(1) - 1) {
				t0 := time.Now()
				c, err := dial(ctx)
				if err == nil {
					c.SetDeadline(t0.Add(5 * time.Second))
					if _, err = c.Write(buf); err == nil {
						_, err = io.ReadFull(c, buf)
					}
					err = errors.Join(err, c.Close())
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", next.Load(), err)
					return
				}
				lives[i] = append(lives[i], time.Since(t0))
				ops.Add(1)
			}
			errs <- nil
		}()
	}
	var err error
	for range spec.Par {
		err = errors.Join(err, <-errs)
	}
	all := slices.Concat(lives...)
	err = errors.Join(err, bud.short(int64(len(all))))
	m := map[string]float64{"conns/s": float64(len(all)) / time.Since(start).Seconds()}
	latencies(m, all)
	keepLatencies(all)
	delete(m, "avg-µs")
	return m, err
}

// chargenCheck checks a chargen stream, read in pieces, against want,
// one period of it or a whole number of periods (chargenBuffer).
type chargenCheck struct {
	want []byte
	off  int64 // the stream's bytes checked so far
}

// next checks b, the stream's next bytes.
func (c *chargenCheck) next(b []byte) error {
	for j := 0; j < len(b); {
		at := int(c.off % int64(len(c.want)))
		k := min(len(b)-j, len(c.want)-at)
		if !bytes.Equal(b[j:j+k], c.want[at:at+k]) {
			i := 0
			for b[j+i] == c.want[at+i] {
				i++
			}
			return fmt.Errorf("chargen: byte %d of the stream is %q, the server sends %q there", c.off+int64(i), b[j+i], c.want[at+i])
		}
		j += k
		c.off += int64(k)
	}
	return nil
}

// udpSend sends Size-byte datagrams on c, a connected UDP socket, as
// fast as it takes them, udpBatch to a system call (sendmmsg), until
// spec's budget ends: how many it sent and in how long. A batch the
// kernel refuses for want of buffer space (ENOBUFS) is not sent and not
// counted.
func udpSend(c net.Conn, spec clientSpec) (map[string]float64, error) {
	pc := ipv4.NewPacketConn(c.(*net.UDPConn))
	msgs := make([]ipv4.Message, udpBatch)
	b := make([]byte, spec.Size)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{b}
	}
	bud := newBudget(spec)
	start := time.Now()
	var sent int64
	for bud.more(sent) {
		batch := msgs
		if bud.n > 0 {
			batch = msgs[:min(int64(len(msgs)), bud.n-sent)]
		}
		n, err := pc.WriteBatch(batch, 0)
		if err != nil && !errors.Is(err, syscall.ENOBUFS) {
			return nil, fmt.Errorf("datagram %d: %w", sent, err)
		}
		sent += int64(max(n, 0))
		ops.Add(int64(max(n, 0)))
	}
	took := time.Since(start).Seconds()
	return map[string]float64{"sent": float64(sent), "send-s": took, "sent-pps": float64(sent) / took}, bud.short(sent)
}

// udpBatch is how many datagrams udpSend hands the kernel at once.
const udpBatch = 64

// lossyTime bounds a chargen client's read.
const lossyTime = 3 * time.Second

// chargenRead reads from a tcpChargen server for at most n bytes and
// lossyTime, checking each byte against chargenBuffer, and returns the
// MB/s from the connection's establishment (the handshake, which a lost
// SYN would stretch by a second, is left out) to the last byte read.
// Only a failed connection or a wrong byte is an error.
func chargenRead(ctx context.Context, dial func(context.Context) (net.Conn, error), n int) (map[string]float64, error) {
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(lossyTime))
	check, buf := chargenCheck{want: chargenBuffer()}, make([]byte, tcpBuffer)
	got := 0
	for got < n {
		m, err := c.Read(buf[:min(len(buf), n-got)])
		if cerr := check.next(buf[:m]); cerr != nil {
			return nil, cerr
		}
		got += m
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("chargen: after %d bytes: %w", got, err)
		}
	}
	return map[string]float64{"MB/s": float64(got) / time.Since(start).Seconds() / 1e6}, nil
}

// idleHold connects, makes one 1-byte round trip, prints the socket's
// congestion control if it is the kernel's ("client-cc: cubic"), and
// holds the connection open, idle, until spec.Time from its start: an
// idle stack holding a connection. Its progress is 1 from the round trip
// on; its result is the connect and round trip's time.
func idleHold(ctx context.Context, dial func(context.Context) (net.Conn, error), spec clientSpec) (map[string]float64, error) {
	bud, t0 := newBudget(spec), time.Now()
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(t0.Add(timeLimit))
	buf := []byte{1}
	if _, err = c.Write(buf); err == nil {
		_, err = io.ReadFull(c, buf)
	}
	if err != nil {
		return nil, err
	}
	rtt := time.Since(t0)
	if tc, ok := c.(*net.TCPConn); ok {
		cc, err := lab.CongestionControl(tc)
		if err != nil {
			return nil, err
		}
		fmt.Printf("client-cc: %s\n", cc)
	}
	ops.Store(1)
	time.Sleep(time.Until(bud.end))
	return map[string]float64{"connect-rr-µs": float64(rtt) / float64(time.Microsecond)}, nil
}

// clientRun is what a client process gave: the metrics it printed, its
// latency histogram's buckets if it printed one, its socket's congestion
// control (mode idle), and its CPU time (user and system, its kernel
// work in system calls included).
type clientRun struct {
	metrics map[string]float64
	latency []bucket
	cc      string
	cpu     time.Duration
}

// A clientRunner runs client processes on the peer: in a namespace of
// this machine (nsRunner), or on another host through its bench -serve
// (remoteRunner). progress, if not nil, gets the client's operations so
// far, every progressEvery. ctx's end kills the client.
type clientRunner interface {
	run(ctx context.Context, spec clientSpec, progress func(ops int64)) (clientRun, error)
}

// nsRunner runs clients in host's namespace.
type nsRunner struct{ host *lab.Host }

func (r nsRunner) run(ctx context.Context, spec clientSpec, progress func(ops int64)) (clientRun, error) {
	spec.Progress = progress != nil
	lines := clientLines{progress: progress}
	cpu, stderr, err := runProcess(ctx, r.host, spec, lines.add)
	if err != nil {
		return clientRun{}, err
	}
	return lines.run(spec.Mode, cpu, stderr)
}

// runClient runs spec in a client process in l's peer namespace and
// returns what it measured.
func runClient(ctx context.Context, l *lab.Lab, spec clientSpec, progress func(ops int64)) (clientRun, error) {
	return nsRunner{l.Peer}.run(ctx, spec, progress)
}

// runProcess runs spec's client process in h's namespace, hands each
// line it prints to each, and returns its CPU time and its stderr.
func runProcess(ctx context.Context, h *lab.Host, spec clientSpec, each func(line string)) (cpu time.Duration, stderr string, err error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return 0, "", err
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeLimit+10*time.Second)
	defer cancel()
	cmd := h.Command(ctx, exe)
	if spec.ClientCPU > 0 {
		cmd = h.Command(ctx, "taskset", "-c", strconv.Itoa(spec.ClientCPU-1), exe)
	}
	cmd.Env = append(os.Environ(), clientEnv+"="+string(js))
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	sc := clientScanner(stdout)
	for sc.Scan() {
		each(sc.Text())
	}
	stderr = strings.TrimSpace(errBuf.String())
	if err := cmd.Wait(); err != nil {
		if stderr != "" {
			err = fmt.Errorf("%w: %s", err, stderr)
		}
		return 0, stderr, fmt.Errorf("client %s: %w", spec.Mode, err)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), stderr, nil
}

// clientScanner reads a client's lines: a latency line has up to ~4,000
// buckets.
func clientScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	return sc
}

// clientLines gathers the lines a client process prints: its progress
// (handed on at once), its latency histogram, its socket's congestion
// control and its result. The local and the remote runner feed it the
// same lines.
type clientLines struct {
	progress        func(ops int64)
	result, lat, cc string
}

func (c *clientLines) add(line string) {
	if rest, ok := strings.CutPrefix(line, "client-progress: "); ok {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil && c.progress != nil {
			c.progress(n)
		}
	} else if rest, ok := strings.CutPrefix(line, "client-latency: "); ok {
		c.lat = rest
	} else if rest, ok := strings.CutPrefix(line, "client-cc: "); ok {
		c.cc = rest
	} else if rest, ok := strings.CutPrefix(line, "client: "); ok {
		c.result = rest
	}
}

// run is what the lines said, of a client of mode that spent cpu and
// wrote stderr.
func (c *clientLines) run(mode string, cpu time.Duration, stderr string) (clientRun, error) {
	run := clientRun{metrics: map[string]float64{}, cc: c.cc, cpu: cpu}
	var err error
	for _, kv := range strings.Fields(c.result) {
		k, v, _ := strings.Cut(kv, "=")
		if run.metrics[k], err = strconv.ParseFloat(v, 64); err != nil {
			return clientRun{}, fmt.Errorf("client %s said %q", mode, c.result)
		}
	}
	for _, b := range strings.Fields(c.lat) {
		ns, n, _ := strings.Cut(b, ":")
		v, err1 := strconv.ParseInt(ns, 10, 64)
		c, err2 := strconv.ParseInt(n, 10, 64)
		if err1 != nil || err2 != nil {
			return clientRun{}, fmt.Errorf("client %s said latency %q", mode, b)
		}
		run.latency = append(run.latency, bucket{v, c})
	}
	if len(run.metrics) == 0 {
		return clientRun{}, fmt.Errorf("client %s printed no result: %s", mode, stderr)
	}
	return run, nil
}
