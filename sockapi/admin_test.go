package sockapi_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/admin"
)

// adminStacks are pipeStacks with an admin socket on a, at the path
// returned.
func adminStacks(t *testing.T, edit func(*sockapi.Config)) (a, b *sockapi.Stack, path string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "run", "a.sock")
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	cfg := sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), AdminSocket: path}
	if edit != nil {
		edit(&cfg)
	}
	a, err := sockapi.New(cfg, la)
	require.NoError(t, err)
	b, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	return a, b, path
}

// requireAnswers checks that the admin socket at path still answers.
func requireAnswers(t *testing.T, path string) {
	t.Helper()
	c, err := admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	info, err := c.Info()
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), info.PID)
}

// rawAdmin connects to the admin socket without the client, for tests
// of what a hostile one sends.
func rawAdmin(t *testing.T, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c, bufio.NewReader(c)
}

// replyError reads a reply line and returns its error.
func replyError(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadBytes('\n')
	require.NoError(t, err)
	var rep struct {
		Error *string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(line, &rep), "%s", line)
	require.NotNil(t, rep.Error, "an error reply: %s", line)
	return *rep.Error
}

// requireClosed checks that the server closed the connection: EOF, or
// ECONNRESET when it closed with our bytes unread, not our own deadline.
func requireClosed(t *testing.T, r *bufio.Reader) {
	t.Helper()
	_, err := r.ReadByte()
	if !errors.Is(err, syscall.ECONNRESET) {
		require.ErrorIs(t, err, io.EOF)
	}
}

// TestAdminOps: each op of the admin socket answers what the stack's
// own methods do: a connection from a to b, a's listener, its
// neighbour, its counters and its description.
func TestAdminOps(t *testing.T) {
	a, b, path := adminStacks(t, nil)
	ln, err := b.Listen("tcp", ":7000")
	require.NoError(t, err)
	defer ln.Close()
	al, err := a.Listen("tcp", ":8000")
	require.NoError(t, err)
	defer al.Close()
	conn, err := a.Dial("tcp", "198.18.0.3:7000")
	require.NoError(t, err)
	defer conn.Close()

	c, err := admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()

	socks, err := c.Sockets()
	require.NoError(t, err)
	var tuples []string
	for _, s := range socks {
		tuples = append(tuples, s.Proto+" "+s.Local.String()+" "+s.Remote.String()+" "+s.State.String())
		if s.State == sockapi.TCPEstablished {
			require.NotNil(t, s.TCP, "a connection's TCPInfo crosses")
			assert.Equal(t, sockapi.TCPEstablished, s.TCP.State)
			assert.Positive(t, s.TCP.SndMSS)
		}
	}
	assert.ElementsMatch(t, []string{
		"tcp 0.0.0.0:8000 invalid AddrPort LISTEN",
		"tcp " + conn.LocalAddr().String() + " 198.18.0.3:7000 ESTABLISHED",
	}, tuples)

	ns, err := c.Neighbors()
	require.NoError(t, err)
	want := a.Neighbors()
	require.Len(t, ns, 1)
	require.Len(t, want, 1)
	assert.Greater(t, want[0].Age, ns[0].Age, "older now")
	ns[0].Age = want[0].Age
	assert.Equal(t, want, ns, "MAC, state and the rest cross as they are")

	cs, err := c.Counters()
	require.NoError(t, err)
	byName := map[string]uint64{}
	for _, n := range cs.Counters {
		byName[n.Name] = n.Value
	}
	assert.Equal(t, uint64(1), byName["TcpActiveOpens"])
	assert.Contains(t, byName, "XdpnetPollerRounds")
	require.Len(t, cs.Queues, 1)
	assert.Equal(t, cs.Counters[len(cs.Counters)-1].Name, cs.Queues[0][len(cs.Queues[0])-1].Name, "a queue's figures are named as the totals' last")

	info, err := c.Info()
	require.NoError(t, err)
	assert.Equal(t, sockapi.AdminInfo{StackInfo: a.Info(), PID: os.Getpid()}, info)
}

// TestAdminSocketFile: the socket is 0600 in a directory made 0700,
// goes with Close, replaces a stale socket left by a process that died,
// and refuses to take over a live one or a file that is no socket.
func TestAdminSocketFile(t *testing.T) {
	a, _, path := adminStacks(t, nil)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, di.Mode())

	_, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), AdminSocket: path}, pipeLink(t))
	assert.ErrorContains(t, err, "in use by a running stack")

	require.NoError(t, a.Close())
	_, err = os.Lstat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "Close removes the socket")

	// A process that died leaves its socket file behind.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	require.NoError(t, err)
	ln.SetUnlinkOnClose(false)
	require.NoError(t, ln.Close())
	_, err = admin.Dial(stale)
	require.ErrorIs(t, err, admin.ErrStale)
	s, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), AdminSocket: stale}, pipeLink(t))
	require.NoError(t, err)
	requireAnswers(t, stale)
	require.NoError(t, s.Close())

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), AdminSocket: file}, pipeLink(t))
	assert.ErrorContains(t, err, "exists and is not a socket")
}

// pipeLink is one end of a pipe whose other end nobody uses.
func pipeLink(t *testing.T) nic.Link {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 64, QueueDepth: 64})
	t.Cleanup(func() { lb.Close() })
	return la
}

// TestAdminGarbage: a line that is not JSON gets an error reply and the
// connection closes; the stack answers the next client.
func TestAdminGarbage(t *testing.T) {
	_, _, path := adminStacks(t, nil)
	c, r := rawAdmin(t, path)
	_, err := c.Write([]byte("\x00\xffGET / HTTP/1.1\r\n"))
	require.NoError(t, err)
	assert.Contains(t, replyError(t, r), "bad request")
	requireClosed(t, r)
	requireAnswers(t, path)
}

// TestAdminOversize: a line longer than AdminMaxLine, sent without end,
// gets an error once the bound is reached (the server holds no more)
// and the connection closes.
func TestAdminOversize(t *testing.T) {
	_, _, path := adminStacks(t, nil)
	c, r := rawAdmin(t, path)
	go c.Write([]byte(`{"op":"` + strings.Repeat("s", 1<<20))) // blocks once the server stops reading
	assert.Contains(t, replyError(t, r), "request longer than 4096 bytes")
	requireClosed(t, r)
	requireAnswers(t, path)
}

// TestAdminSilentClient: a client that connects and sends nothing is
// closed after the idle timeout, freeing its goroutine and slot.
func TestAdminSilentClient(t *testing.T) {
	s, _, path := adminStacks(t, func(cfg *sockapi.Config) { sockapi.SetAdminIdle(cfg, 200*time.Millisecond) })
	_, r := rawAdmin(t, path)
	start := time.Now()
	requireClosed(t, r)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "closed by the idle timeout, not at once")
	require.Eventually(t, func() bool { return sockapi.AdminConns(s) == 0 }, 5*time.Second, time.Millisecond)
	requireAnswers(t, path)
}

// TestAdminHalfRequest: half a request line, then the client closes:
// the server drops the connection, answers nothing, holds nothing.
func TestAdminHalfRequest(t *testing.T) {
	s, _, path := adminStacks(t, nil)
	c, r := rawAdmin(t, path)
	_, err := c.Write([]byte(`{"op":"sock`))
	require.NoError(t, err)
	require.NoError(t, c.(*net.UnixConn).CloseWrite())
	requireClosed(t, r)
	require.Eventually(t, func() bool { return sockapi.AdminConns(s) == 0 }, 5*time.Second, time.Millisecond)
	requireAnswers(t, path)
}

// TestAdminUnknownOp: an unknown op gets an error naming the ops, and
// the connection goes on serving.
func TestAdminUnknownOp(t *testing.T) {
	_, _, path := adminStacks(t, nil)
	c, r := rawAdmin(t, path)
	_, err := c.Write([]byte(`{"op":"reboot"}` + "\n" + `{"op":"info"}` + "\n"))
	require.NoError(t, err)
	msg := replyError(t, r)
	assert.True(t, strings.HasPrefix(msg, `unknown op "reboot"; ops: `), msg)
	for _, op := range []string{"capture", "counters", "info", "neighbors", "sockets"} {
		assert.Contains(t, msg, op)
	}
	line, err := r.ReadBytes('\n')
	require.NoError(t, err)
	assert.Contains(t, string(line), `"pid":`)

	cl, err := admin.Dial(path)
	require.NoError(t, err)
	defer cl.Close()
	assert.ErrorContains(t, cl.Call("nope", nil, nil), `unknown op "nope"`)
}

// TestAdminManyConnections: past AdminMaxConns at once, a connection
// is answered busy and closed; the ones served keep working, and once
// they go, new ones are served again.
func TestAdminManyConnections(t *testing.T) {
	s, _, path := adminStacks(t, nil)
	var held []*admin.Client
	for range sockapi.AdminMaxConns {
		c, err := admin.Dial(path)
		require.NoError(t, err)
		_, err = c.Info() // served: it holds a slot
		require.NoError(t, err)
		held = append(held, c)
	}
	for range 3 {
		_, r := rawAdmin(t, path)
		assert.Contains(t, replyError(t, r), "busy")
		requireClosed(t, r)
	}
	_, err := held[0].Sockets()
	require.NoError(t, err, "a connection served keeps its slot")
	assert.NotEmpty(t, s.Counters().List(), "the stack is unharmed")
	for _, c := range held {
		c.Close()
	}
	require.Eventually(t, func() bool { return sockapi.AdminConns(s) == 0 }, 5*time.Second, time.Millisecond)
	requireAnswers(t, path)
}

// TestAdminDialErrors: the client names what is wrong with a path.
func TestAdminDialErrors(t *testing.T) {
	_, err := admin.Dial(filepath.Join(t.TempDir(), "none.sock"))
	assert.ErrorContains(t, err, "no such socket (is the stack running?)")
	assert.False(t, errors.Is(err, admin.ErrStale))
}

// TestAdminStream: a streaming op (the tests' "ticks") sends results
// until the client closes its end, and ends then; another ends when
// the stack closes.
func TestAdminStream(t *testing.T) {
	s, _, path := adminStacks(t, nil)
	c, err := admin.Dial(path)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, c.Start("ticks", nil))
	for want := range 3 {
		var n int
		require.NoError(t, c.Next(&n))
		assert.Equal(t, want, n)
	}
	require.NoError(t, c.Close())
	select {
	case <-sockapi.TickStreamEnded():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream went on after its client closed")
	}
	require.Eventually(t, func() bool { return sockapi.AdminConns(s) == 0 }, 5*time.Second, time.Millisecond)

	c, err = admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Start("ticks", nil))
	require.NoError(t, c.Next(nil))
	require.NoError(t, s.Close())
	select {
	case <-sockapi.TickStreamEnded():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream went on after the stack closed")
	}
}
