package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// Two hosts: the peer runs `bench -serve`, which runs each client the
// driver asks for as a process of its own on that host, as the lab runs
// one in its Peer namespace (runProcess), and relays what it prints.
//
// The control protocol, one TCP connection per client: the driver sends
// one line, a serveRequest as JSON; the serve side answers with the
// client's stdout lines as they come ("client-progress: …",
// "client-latency: …", "client-cc: …", "client: …"), then one
// "serve-status: " line, a serveStatus as JSON, and closes. A request
// without a client is a hello: the status line alone. The connection's
// end, either way, ends the client.

// servePort is -serve's default control port, on every address of the
// host.
const servePort = 9207

// Bounds of the serve side: a request line is at most maxRequest bytes
// and must arrive within requestTimeout of the connection; at most
// serveConns control connections are served at once (a run uses one at
// a time), and one lasts at most a client's timeLimit and some.
const (
	maxRequest     = 4 << 10
	requestTimeout = 5 * time.Second
	serveConns     = 4
	controlLimit   = timeLimit + 20*time.Second
)

// peerTimeout bounds the driver's hello: a peer that does not answer
// within it fails the run at its start.
const peerTimeout = 3 * time.Second

// statusPrefix starts the serve side's last line.
const statusPrefix = "serve-status: "

// serveRequest is the control connection's one request line.
type serveRequest struct {
	Client *clientSpec `json:"client,omitempty"` // nil: a hello
}

// serveStatus is the serve side's last line: the client's CPU time and
// stderr, or why it failed, and the serve host's boot id.
type serveStatus struct {
	// BootID is the serve host's /proc/sys/kernel/random/boot_id: when it
	// is the driver's, the two run on one machine (a lab run as two
	// hosts), and the client's CPU time is not other processes'.
	BootID string `json:"boot_id"`
	CPUNs  int64  `json:"cpu_ns,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
}

// bootID is this machine's boot id ("" if it cannot be read).
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// remoteRunner runs clients on a peer host through its bench -serve at
// addr (host:port).
type remoteRunner struct{ addr string }

func (r remoteRunner) run(ctx context.Context, spec clientSpec, progress func(ops int64)) (clientRun, error) {
	spec.Progress = progress != nil
	lines := clientLines{progress: progress}
	st, err := r.request(ctx, &spec, controlLimit, lines.add)
	if err != nil {
		return clientRun{}, fmt.Errorf("peer %s: %w", r.addr, err)
	}
	return lines.run(spec.Mode, time.Duration(st.CPUNs), st.Stderr)
}

// hello checks that the peer answers, within peerTimeout, and returns
// its status.
func (r remoteRunner) hello(ctx context.Context) (serveStatus, error) {
	st, err := r.request(ctx, nil, peerTimeout, nil)
	if err != nil {
		return serveStatus{}, fmt.Errorf("peer %s does not answer: %w", r.addr, err)
	}
	return st, nil
}

// request sends one request, hands each line of the reply before the
// status to each, and returns the status; limit bounds the whole
// exchange, ctx's end closes it (and so ends the client).
func (r remoteRunner) request(ctx context.Context, spec *clientSpec, limit time.Duration, each func(line string)) (serveStatus, error) {
	d := net.Dialer{Timeout: min(limit, peerTimeout)}
	c, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return serveStatus{}, err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	c.SetDeadline(time.Now().Add(limit))
	js, err := json.Marshal(serveRequest{Client: spec})
	if err != nil {
		return serveStatus{}, err
	}
	if _, err := c.Write(append(js, '\n')); err != nil {
		return serveStatus{}, err
	}
	sc := clientScanner(c)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), statusPrefix)
		if !ok {
			if each != nil {
				each(sc.Text())
			}
			continue
		}
		var st serveStatus
		if err := json.Unmarshal([]byte(rest), &st); err != nil {
			return serveStatus{}, fmt.Errorf("said %q: %v", sc.Text(), err)
		}
		if st.Error != "" {
			return serveStatus{}, errors.New(st.Error)
		}
		return st, nil
	}
	err = sc.Err()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return serveStatus{}, fmt.Errorf("the control connection ended before the status: %w", err)
}

// serveMain is bench -serve: it readies this host for the clients
// (peerSysctls), listens on listen and serves control connections until
// SIGINT or SIGTERM, which end every client and the command (exit 0).
func serveMain(listen string, stdout, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "bench: -serve needs root (euid 0, have %d): it sets the clients' sysctls\n", os.Geteuid())
		return exitNoLab
	}
	here := &lab.Host{} // this namespace
	if err := peerSysctls(here); err != nil {
		fmt.Fprintln(stderr, "bench:", flatten(err))
		return exitNoLab
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitNoLab
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, func() { ln.Close() })
	fmt.Fprintf(stdout, "bench: serving clients on %s\n", ln.Addr())
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, serveConns)
	for {
		c, err := ln.Accept()
		if ctx.Err() != nil {
			return exitOK
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitNoLab
		}
		select {
		case slots <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				serveConn(ctx, here, c)
			}()
		default:
			c.SetDeadline(time.Now().Add(requestTimeout))
			writeStatus(c, serveStatus{Error: fmt.Sprintf("busy: %d control connections already", serveConns)})
			c.Close()
		}
	}
}

// serveConn serves one control connection: it reads the request, runs
// its client in h's namespace, relays the client's lines and ends with
// the status. The client is killed when ctx ends or the connection does.
func serveConn(ctx context.Context, h *lab.Host, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(requestTimeout))
	st := serveStatus{BootID: bootID()}
	req, err := readRequest(c)
	if err == nil && req.Client != nil {
		err = checkRemote(*req.Client)
	}
	if err != nil || req.Client == nil {
		if err != nil {
			st.Error = err.Error()
		}
		writeStatus(c, st)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.SetDeadline(time.Now().Add(controlLimit))
	go func() {
		// The driver sends nothing more: this read ends when the
		// connection does (the driver died, or gave up), and so the client.
		io.Copy(io.Discard, c)
		cancel()
	}()
	relay := func(line string) {
		c.Write([]byte(line + "\n")) // a failed write ends the connection, and the watcher above the client
	}
	cpu, stderr, err := runProcess(ctx, h, *req.Client, relay)
	st.CPUNs, st.Stderr = cpu.Nanoseconds(), stderr
	if err != nil {
		st.Error = err.Error()
	}
	writeStatus(c, st)
}

// readRequest reads the one request line, at most maxRequest bytes.
func readRequest(c net.Conn) (serveRequest, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxRequest), maxRequest).ReadSlice('\n')
	if err != nil {
		return serveRequest{}, fmt.Errorf("want one request line of at most %d bytes within %v: %v", maxRequest, requestTimeout, err)
	}
	var req serveRequest
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return serveRequest{}, fmt.Errorf("bad request: %v", err)
	}
	return req, nil
}

// checkRemote refuses a client spec the serve side will not run: it runs
// kernel clients only (an xdpnet client would attach XDP to an interface
// of this host), towards an address (no name to look up), within bounds.
func checkRemote(s clientSpec) error {
	if s.Via != viaKernel {
		return fmt.Errorf("bad request: via %q: -serve runs %q clients only", s.Via, viaKernel)
	}
	if _, err := netip.ParseAddrPort(s.Server); err != nil {
		return fmt.Errorf("bad request: server: %v", err)
	}
	if s.N < 0 || s.Par < 0 || s.Par > 64 || s.Size < 0 || s.Size > 1<<20 || s.Time < 0 || s.Time > timeLimit ||
		s.ClientCPU < 0 || s.ClientCPU > runtime.NumCPU() {
		return fmt.Errorf("bad request: want N >= 0, Par <= 64, Size <= 1 MiB, Time <= %v, ClientCPU <= %d", timeLimit, runtime.NumCPU())
	}
	return nil
}

func writeStatus(c net.Conn, st serveStatus) {
	js, _ := json.Marshal(st) // a struct of strings and an int
	c.Write(append([]byte(statusPrefix), append(js, '\n')...))
}

// flatten is err's message on one line, for stderr: a command's
// output folded in (oneLine, for table cells, also shortens it).
func flatten(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
