package sockapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The admin endpoint (Config.AdminSocket) is a Unix-domain socket that
// serves the stack's snapshots to other processes: `xdpnet sockets`,
// `counters` and `arp` read it, through package sockapi/admin.
//
// Protocol. A client writes a request as one line of JSON, at most
// AdminMaxLine bytes with its newline:
//
//	{"op":"sockets"}
//	{"op":"capture","args":{...}}
//
// and the stack answers it with one line of JSON, the op's result or an
// error:
//
//	{"result":[{"proto":"tcp","local":"198.18.0.2:80",...}]}
//	{"error":"unknown op \"x\"; ops: counters, info, neighbors, sockets"}
//
// The ops are sockets (Stack.Sockets), neighbors (Stack.Neighbors),
// counters ({"counters":[{"name":..,"value":..}],"queues":[[...]]}: the
// Counters' List and each queue's, nstat's names and order), info
// (StackInfo's fields and "pid") and capture, a stream of the stack's
// frames (Stack.Capture; capture_admin.go). A connection carries any number of
// requests, one after another. It is closed after a line that is too
// long or not a JSON request (once the error is written), when a request
// takes longer than the idle timeout (10 s) to arrive, and when the stack
// closes. At most adminMaxConns connections are served at once; one more
// is answered {"error":"busy: ..."} and closed.
//
// Threading. The endpoint runs on goroutines of its own, one accepting
// and one per connection; it reads the stack only through Stack's
// methods, whose snapshots are copied on each poller between its rounds,
// so a client, slow or hostile, never holds a poller longer than a copy.

// AdminDirEnv names the environment variable that moves the directory of
// the admin sockets from /run/xdpnet: for stacks run by users who cannot
// write /run, and for tests.
const AdminDirEnv = "XDPNET_RUNDIR"

// AdminMaxLine bounds a request line, newline included.
const AdminMaxLine = 4096

const (
	adminMaxConns     = 16               // connections served at once
	adminIdle         = 10 * time.Second // the longest wait for a request line
	adminWriteTimeout = 10 * time.Second // the longest wait for a client to take a reply line
)

// AdminDir is the directory of the admin sockets: $XDPNET_RUNDIR, or
// /run/xdpnet.
func AdminDir() string {
	if d := os.Getenv(AdminDirEnv); d != "" {
		return d
	}
	return "/run/xdpnet"
}

// AdminSocketPath is the default admin socket of a stack on iface in
// this process: AdminDir()/<iface>.<pid>.sock, the name package
// sockapi/admin's Find looks for. Set Config.AdminSocket to it.
func AdminSocketPath(iface string) string {
	return filepath.Join(AdminDir(), fmt.Sprintf("%s.%d.sock", iface, os.Getpid()))
}

// AdminSocketError is why Open or New could not make the admin socket
// at Path.
type AdminSocketError struct {
	Path string
	Err  error
}

// Error names the path and the cause.
func (e *AdminSocketError) Error() string {
	return "sockapi: admin socket " + e.Path + ": " + e.Err.Error()
}

// Unwrap is the cause.
func (e *AdminSocketError) Unwrap() error { return e.Err }

// adminOp is one operation of the admin endpoint. run answers a request
// through reply, which writes one line {"result":v} (and fails once the
// client is gone or took no line for adminWriteTimeout); an error
// returned before any reply is answered {"error":...}.
//
// A unary op (sockets, counters) calls reply once. A streaming op
// (stream set: a live capture) calls reply once per message, for as
// long as it likes, and returns when ctx is done, which happens when the
// client closes its end or sends anything more, or the stack closes, or
// when reply fails; the connection is closed after it. A streaming op
// must never let a slow client block what feeds it: it buffers a bounded
// amount between its source and reply, drops the rest and says so in
// its messages. A streaming op may also pass reply an adminBinary,
// written as it is: after its first line, the stream of such an op (the
// capture's frames) is in a framing of its own. To add an op, add it to
// adminOps.
type adminOp struct {
	stream bool
	run    func(ctx context.Context, s *Stack, args json.RawMessage, reply func(v any) error) error
}

// adminOps are the endpoint's operations by name.
var adminOps = map[string]adminOp{
	"sockets":   unary(func(s *Stack) any { return s.Sockets() }),
	"neighbors": unary(func(s *Stack) any { return s.Neighbors() }),
	"counters":  unary(func(s *Stack) any { return adminCountersOf(s.Counters()) }),
	"info":      unary(func(s *Stack) any { return AdminInfo{StackInfo: s.Info(), PID: os.Getpid()} }),
	"capture":   {stream: true, run: adminCapture},
}

// unary makes an op that answers with one result.
func unary(f func(s *Stack) any) adminOp {
	return adminOp{run: func(_ context.Context, s *Stack, _ json.RawMessage, reply func(any) error) error {
		return reply(f(s))
	}}
}

// AdminCounters is the result of the admin endpoint's counters op: the
// stack's counters as Counters.List gives them, and each queue's as
// QueueCounters.List does.
type AdminCounters struct {
	Counters []Counter   `json:"counters"`
	Queues   [][]Counter `json:"queues"`
}

func adminCountersOf(c Counters) AdminCounters {
	a := AdminCounters{Counters: c.List(), Queues: make([][]Counter, len(c.Queues))}
	for i, q := range c.Queues {
		a.Queues[i] = q.List()
	}
	return a
}

// AdminInfo is the result of the admin endpoint's info op: the stack's
// StackInfo and the process it runs in.
type AdminInfo struct {
	StackInfo
	PID int `json:"pid"`
}

// adminServer serves a stack's admin socket.
type adminServer struct {
	s      *Stack
	ln     *net.UnixListener
	idle   time.Duration
	slots  chan struct{} // one per connection served
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// listenAdmin binds the admin socket at path, if any (nil without):
// its directory is made (0700) if missing, a socket file left there by
// a process that died is replaced, and the socket is made 0600, so only
// the stack's user (and root) can connect. Between bind and chmod the
// socket has the umask's mode; the default directory, 0700, closes that
// window. Open calls it before it touches the interface, so a path it
// cannot take costs no XDP attach and detach.
func listenAdmin(path string, idle time.Duration) (*adminServer, error) {
	if path == "" {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, &AdminSocketError{path, err}
	}
	if err := removeStale(path); err != nil {
		return nil, &AdminSocketError{path, err}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, &AdminSocketError{path, err}
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, &AdminSocketError{path, err}
	}
	if idle == 0 {
		idle = adminIdle
	}
	a := &adminServer{ln: ln, idle: idle, slots: make(chan struct{}, adminMaxConns), conns: map[net.Conn]struct{}{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// removeStale removes a socket at path that nobody listens on: the
// leftover of a process that died. A live socket, or a file that is no
// socket, is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return errors.New("exists and is not a socket")
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return errors.New("in use by a running stack")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	return os.Remove(path)
}

// start serves s, accepting connections until close.
func (a *adminServer) start(s *Stack) {
	a.s = s
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := a.ln.Accept()
			if err != nil {
				if a.ctx.Err() != nil {
					return
				}
				// Out of descriptors, most likely: let them free.
				select {
				case <-a.ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			select {
			case a.slots <- struct{}{}:
			default:
				// A fresh socket's buffer takes the line at once.
				replyLine(c, adminError{fmt.Sprintf("busy: %d admin connections served already", adminMaxConns)})
				c.Close()
				continue
			}
			if !a.track(c) {
				c.Close()
				return
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				defer func() { <-a.slots }()
				defer a.untrack(c)
				a.serve(c)
			}()
		}
	}()
}

func (a *adminServer) track(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx.Err() != nil {
		return false
	}
	a.conns[c] = struct{}{}
	return true
}

func (a *adminServer) untrack(c net.Conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	c.Close()
}

// close stops accepting, closes every connection (a streaming op's
// context first), waits for their goroutines and removes the socket;
// nothing for a nil a.
func (a *adminServer) close() {
	if a == nil {
		return
	}
	a.cancel()
	a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// adminRequest is a request line.
type adminRequest struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// adminResult and adminError are the reply lines.
type adminResult struct {
	Result any `json:"result"`
}

type adminError struct {
	Error string `json:"error"`
}

// serve answers c's requests until it closes, errs or idles.
func (a *adminServer) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, AdminMaxLine)
	reply := func(v any) error { return replyLine(c, adminResult{v}) }
	for {
		c.SetReadDeadline(time.Now().Add(a.idle))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			replyLine(c, adminError{fmt.Sprintf("request longer than %d bytes", AdminMaxLine)})
			return
		}
		if err != nil {
			return // gone, or silent for too long, or half a line then gone
		}
		var req adminRequest
		if err := json.Unmarshal(line, &req); err != nil {
			replyLine(c, adminError{"bad request: " + err.Error()})
			return
		}
		op, ok := adminOps[req.Op]
		switch {
		case !ok:
			err = replyLine(c, adminError{fmt.Sprintf("unknown op %q; ops: %s", req.Op, strings.Join(adminOpNames(), ", "))})
		case op.stream:
			a.stream(c, op, req, reply)
			return
		default:
			if err = op.run(a.ctx, a.s, req.Args, reply); err != nil {
				err = replyLine(c, adminError{req.Op + ": " + err.Error()})
			}
		}
		if err != nil {
			return
		}
	}
}

// stream runs a streaming op on c until the client closes its end or
// sends anything, or the stack closes, or the op ends.
func (a *adminServer) stream(c net.Conn, op adminOp, req adminRequest, reply func(any) error) {
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	go func() {
		// Nothing more is due from the client: its EOF, or a byte, ends
		// the stream. The connection's close ends this read.
		c.SetReadDeadline(time.Time{})
		c.Read(make([]byte, 1))
		cancel()
	}()
	line := reply
	reply = func(v any) error {
		if b, ok := v.(adminBinary); ok {
			c.SetWriteDeadline(time.Now().Add(adminWriteTimeout))
			_, err := c.Write(b)
			return err
		}
		return line(v)
	}
	if err := op.run(ctx, a.s, req.Args, reply); err != nil {
		replyLine(c, adminError{req.Op + ": " + err.Error()})
	}
}

// adminBinary is a streaming op's message in its own framing, which
// reply writes as it is, without a line of JSON around it.
type adminBinary []byte

// replyLine writes a reply line to c, waiting adminWriteTimeout at most
// for the client to take it.
func replyLine(c net.Conn, v any) error {
	c.SetWriteDeadline(time.Now().Add(adminWriteTimeout))
	return writeLine(c, v)
}

// writeLine writes v as a line of JSON.
func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// adminOpNames lists the ops, sorted.
func adminOpNames() []string {
	names := make([]string, 0, len(adminOps))
	for n := range adminOps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
