package main

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/admin"
)

var captureCounts = regexp.MustCompile(`(?m)^(\d+) packets captured\n(\d+) packets received by filter\n(\d+) packets dropped`)

// TestCaptureLab: `xdpnet capture -w` of a curl download from `xdpnet
// serve -http`, stopped by SIGINT: tshark reads the file and finds the
// handshake, the GET and its 200, and a FIN each way, and the file's
// frames are exactly the connection's segments as the stack counts
// them, SegsIn + SegsOut, read while it lingers in TIME_WAIT (curl
// asks the server to close first).
func TestCaptureLab(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	sock := filepath.Join(t.TempDir(), "serve.sock")
	s := startServe(t, l, bin, "-http", ":80", "-admin", sock)
	assert.Contains(t, s.next(t), "HTTP on")

	file := filepath.Join(t.TempDir(), "curl.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	capt := exec.CommandContext(ctx, bin, "capture", "-socket", sock, "-w", file, "tcp", "and", "port", "80")
	stdout, err := capt.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	capt.Stderr = &stderr
	require.NoError(t, capt.Start())
	t.Cleanup(func() { capt.Process.Kill(); capt.Wait() })
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	assert.Equal(t, "listening on "+l.Local.Link+", link-type EN10MB (Ethernet), snapshot length 1514 bytes\n", first)

	const size = 256 << 10
	got := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "20", "-H", "Connection: close", "-o", "/dev/null",
		"-w", "%{size_download} %{local_port}", "http://"+l.StackAddr.String()+"/bytes/"+strconv.Itoa(size))
	fields := strings.Fields(got)
	require.Len(t, fields, 2, got)
	require.Equal(t, strconv.Itoa(size), fields[0])
	port, err := strconv.Atoi(fields[1])
	require.NoError(t, err)

	// The server closed first: its end waits in TIME_WAIT, with the
	// connection's counts, once the client's FIN is acknowledged.
	remote := netip.AddrPortFrom(l.Peer.Addr.Addr(), uint16(port))
	var info *sockapi.TCPInfo
	require.Eventually(t, func() bool {
		c, err := admin.Dial(sock)
		if err != nil {
			return false
		}
		defer c.Close()
		socks, err := c.Sockets()
		if err != nil {
			return false
		}
		for _, so := range socks {
			if so.Remote == remote && so.State == sockapi.TCPTimeWait {
				info = so.TCP
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the server's end in TIME_WAIT")
	segs := int(info.SegsIn + info.SegsOut)

	require.NoError(t, capt.Process.Signal(syscall.SIGINT))
	rest := new(strings.Builder)
	_, err = io.Copy(rest, out)
	require.NoError(t, err)
	require.NoError(t, capt.Wait(), "stderr: %s", stderr.String())
	m := captureCounts.FindStringSubmatch(rest.String())
	require.NotNil(t, m, rest.String())
	t.Logf("capture: %s; the connection: %d segments in, %d out", strings.ReplaceAll(strings.TrimSpace(rest.String()), "\n", ", "), info.SegsIn, info.SegsOut)
	assert.Equal(t, "0", m[3], "no frame dropped")
	assert.Equal(t, strconv.Itoa(segs), m[1], "the capture holds the connection's SegsIn + SegsOut frames")
	assert.Equal(t, m[1], m[2], "what matched the filter was written")

	// tshark: one line per frame, its addresses, flags and HTTP.
	tshark := exec.Command("tshark", "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "ip.src", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.flags.fin",
		"-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code")
	tshark.Env = append(os.Environ(), "HOME="+t.TempDir()) // its profile, not root's
	text, err := tshark.Output()
	require.NoError(t, err, "tshark: %s", text)
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	assert.Len(t, lines, segs, "tshark reads every frame")
	peer, stack := l.Peer.Addr.Addr().String(), l.StackAddr.String()
	type frame struct{ src, syn, ack, fin, method, uri, code string }
	var frames []frame
	for _, line := range lines {
		f := strings.Split(line, "|")
		require.Len(t, f, 7, line)
		frames = append(frames, frame{f[0], f[1], f[2], f[3], f[4], f[5], f[6]})
	}
	require.GreaterOrEqual(t, len(frames), 8)
	assert.Equal(t, frame{src: peer, syn: "1", ack: "0", fin: "0"}, frames[0], "SYN")
	assert.Equal(t, frame{src: stack, syn: "1", ack: "1", fin: "0"}, frames[1], "SYN-ACK")
	assert.Equal(t, frame{src: peer, syn: "0", ack: "1", fin: "0"}, frames[2], "ACK")
	var get, ok200, finStack, finPeer int
	for _, f := range frames {
		switch {
		case f.method == "GET" && f.uri == "/bytes/"+strconv.Itoa(size) && f.src == peer:
			get++
		case f.code == "200" && f.src == stack:
			ok200++
		}
		if f.fin == "1" {
			if f.src == stack {
				finStack++
			} else {
				finPeer++
			}
		}
	}
	assert.Equal(t, []int{1, 1, 1, 1}, []int{get, ok200, finStack, finPeer}, "the GET, its 200, a FIN from each end")
}
