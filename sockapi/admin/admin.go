// Package admin is the client of a running stack's admin endpoint
// (sockapi.Config.AdminSocket; `xdpnet serve` has one by default): the
// stack's sockets, counters, neighbours and description, read from
// another process. `xdpnet sockets`, `counters` and `arp` are built on
// it.
//
//	eps, err := admin.Find(0, "eth1") // the stacks on eth1
//	c, err := admin.Dial(eps[0].Path)
//	defer c.Close()
//	socks, err := c.Sockets()
//
// The protocol, one JSON request line answered by one JSON reply line,
// is described with the server, in sockapi's admin.go.
package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/sockapi"
)

// Errors of Dial, Find and Pick, to test with errors.Is.
var (
	// ErrStale is a socket file nobody listens on: the leftover of a
	// stack that exited without removing it (killed, or crashed).
	ErrStale = errors.New("no stack listens on it (a stale socket of a stack that exited)")
	// ErrNoStack is Pick finding no stack.
	ErrNoStack = errors.New("no xdpnet stack found")
	// ErrSeveral is Pick finding more stacks than one.
	ErrSeveral = errors.New("several xdpnet stacks")
)

// Timeout bounds each call of a Client: the stack answers in
// milliseconds, so a call that takes longer meets a stack that is stuck.
const Timeout = 10 * time.Second

// Client is a connection to a stack's admin socket. Its calls are made
// one at a time: it is not safe for concurrent use.
type Client struct {
	path string
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the admin socket at path. Its errors say why in one
// line: no such socket, ErrStale, or permission denied (wrapping
// os.ErrPermission) with the socket's owner.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, Timeout)
	if err != nil {
		return nil, dialError(path, err)
	}
	return &Client{path: path, conn: c, r: bufio.NewReader(c)}, nil
}

// dialError explains a failed connect to path.
func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("admin socket %s: %w", path, ErrStale)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("admin socket %s: no such socket (is the stack running?)", path)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		owner := "another user"
		if fi, serr := os.Stat(path); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owner = "uid " + strconv.Itoa(int(st.Uid))
				if u, uerr := user.LookupId(strconv.Itoa(int(st.Uid))); uerr == nil {
					owner = u.Username
				}
			}
		}
		return fmt.Errorf("admin socket %s: %w: it is %s's; run as that user or root", path, os.ErrPermission, owner)
	}
	return fmt.Errorf("admin socket %s: %w", path, err)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// Sockets is the stack's Stack.Sockets.
func (c *Client) Sockets() ([]sockapi.Socket, error) {
	var s []sockapi.Socket
	return s, c.Call("sockets", nil, &s)
}

// Neighbors is the stack's Stack.Neighbors.
func (c *Client) Neighbors() ([]sockapi.Neighbor, error) {
	var n []sockapi.Neighbor
	return n, c.Call("neighbors", nil, &n)
}

// Counters is the stack's Stack.Counters, as named lists.
func (c *Client) Counters() (sockapi.AdminCounters, error) {
	var a sockapi.AdminCounters
	return a, c.Call("counters", nil, &a)
}

// Info is the stack's Stack.Info and its process.
func (c *Client) Info() (sockapi.AdminInfo, error) {
	var i sockapi.AdminInfo
	return i, c.Call("info", nil, &i)
}

// Call makes a request of op with args (nil for none) and decodes the
// result into result, within Timeout. An error reply is an error.
func (c *Client) Call(op string, args, result any) error {
	c.conn.SetDeadline(time.Now().Add(Timeout))
	defer c.conn.SetDeadline(time.Time{})
	if err := c.Start(op, args); err != nil {
		return err
	}
	return c.Next(result)
}

// Start sends a request of op with args, for a streaming op whose
// results Next reads one by one; closing the Client ends the stream.
// Start and Next keep no deadline: set one with SetDeadline.
func (c *Client) Start(op string, args any) error {
	req := struct {
		Op   string `json:"op"`
		Args any    `json:"args,omitempty"`
	}{op, args}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("admin: %s: %w", op, err)
	}
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("admin: %s: %w", op, err)
	}
	return nil
}

// Next reads the next reply line into result.
func (c *Client) Next(result any) error {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *string         `json:"error"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("admin socket %s: bad reply: %w", c.path, err)
	}
	if r.Error != nil {
		return fmt.Errorf("admin socket %s: %s", c.path, *r.Error)
	}
	if result == nil || r.Result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("admin socket %s: bad reply: %w", c.path, err)
	}
	return nil
}

// SetDeadline sets the connection's deadline, for Start and Next.
func (c *Client) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Endpoint is a stack's admin socket, as Find finds it.
type Endpoint struct {
	Path      string
	Interface string
	PID       int
}

// String is the endpoint as Pick's errors name it: "eth1 (pid 42)".
func (e Endpoint) String() string { return fmt.Sprintf("%s (pid %d)", e.Interface, e.PID) }

// Find lists the admin sockets in sockapi.AdminDir() at their default
// names (sockapi.AdminSocketPath: <iface>.<pid>.sock) of live processes,
// sorted by path: of process pid (0: any) and interface iface ("": any).
// A missing directory is no stack, not an error.
func Find(pid int, iface string) ([]Endpoint, error) {
	dir := sockapi.AdminDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	var eps []Endpoint
	for _, e := range ents {
		ep, ok := parseName(e.Name())
		if !ok || e.Type()&os.ModeSocket == 0 || pid != 0 && ep.PID != pid || iface != "" && ep.Interface != iface || !alive(ep.PID) {
			continue
		}
		ep.Path = filepath.Join(dir, e.Name())
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return strings.Compare(a.Path, b.Path) })
	return eps, nil
}

// parseName reads <iface>.<pid>.sock; an interface name may hold dots
// (a VLAN's, eth0.100), a PID none.
func parseName(name string) (Endpoint, bool) {
	base, ok := strings.CutSuffix(name, ".sock")
	i := strings.LastIndexByte(base, '.')
	if !ok || i < 1 {
		return Endpoint{}, false
	}
	pid, err := strconv.Atoi(base[i+1:])
	if err != nil || pid <= 0 {
		return Endpoint{}, false
	}
	return Endpoint{Interface: base[:i], PID: pid}, true
}

// alive reports whether process pid exists (maybe another user's).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Pick finds the one stack of process pid (0: any) on iface ("": any):
// ErrNoStack when there is none, ErrSeveral, naming them, when there
// are more.
func Pick(pid int, iface string) (Endpoint, error) {
	eps, err := Find(pid, iface)
	if err != nil {
		return Endpoint{}, err
	}
	var which []string
	if iface != "" {
		which = append(which, "on "+iface)
	}
	if pid != 0 {
		which = append(which, "in pid "+strconv.Itoa(pid))
	}
	where := strings.Join(append(which, "in "+sockapi.AdminDir()), " ")
	switch len(eps) {
	case 0:
		return Endpoint{}, fmt.Errorf("%w %s (is `xdpnet serve` running?)", ErrNoStack, where)
	case 1:
		return eps[0], nil
	}
	names := make([]string, len(eps))
	for i, e := range eps {
		names[i] = e.String()
	}
	return Endpoint{}, fmt.Errorf("%w %s: %s", ErrSeveral, where, strings.Join(names, ", "))
}
