package sockapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/xdpnet/xdpnet/internal/product/httpsvc"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// webName is the name the lab's DNS server answers, with the peer's
// address.
const webName = "web.xdpnet.test."

// kernelHTTP serves httpsvc with the kernel's stack in the peer's
// namespace and counts the connections it accepts.
func kernelHTTP(t *testing.T, l *lab.Lab) (port uint16, conns *atomic.Int64) {
	t.Helper()
	ln := kernelListen(t, l)
	conns = new(atomic.Int64)
	srv := &http.Server{
		Handler: httpsvc.New(nil), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort().Port(), conns
}

// kernelDNS answers A queries for webName with the peer's address (and
// NXDOMAIN for other names) over the kernel's UDP in the peer's
// namespace; it counts the queries that came from xdpnet's address.
func kernelDNS(t *testing.T, l *lab.Lab) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	var pc net.PacketConn
	require.NoError(t, l.Peer.Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(l.Peer.Addr.Addr(), 0).String())
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	fromStack := new(atomic.Int64)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if from.(*net.UDPAddr).AddrPort().Addr() == l.StackAddr {
				fromStack.Add(1)
			}
			if resp, err := dnsAnswer(buf[:n], l.Peer.Addr.Addr()); err == nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), fromStack
}

func dnsAnswer(query []byte, addr netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	known := strings.EqualFold(q.Name.String(), webName)
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if known && q.Type == dnsmessage.TypeA {
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// get fetches url with c and checks the body against httpsvc's stream of
// size bytes and the digest header.
func get(c *http.Client, url string, size int64, want []byte) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || int64(len(body)) != size {
		return fmt.Errorf("%s: %s, %d bytes, want %d", url, resp.Status, len(body), size)
	}
	if want != nil && !bytes.Equal(body, want) {
		return fmt.Errorf("%s: the body is not the stream", url)
	}
	sum := sha256.Sum256(body)
	if got := resp.Header.Get(httpsvc.SumHeader); got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("%s: digest %s, header %s", url, hex.EncodeToString(sum[:]), got)
	}
	return nil
}

// TestHTTPClientLab: net/http's client on xdpnet (Transport.DialContext =
// Stack.DialContext) against net/http's server on the kernel: a 32 MiB
// body, 1,000 keep-alive requests, 1,000 requests on new connections,
// and a name resolved by the stack's resolver through a DNS server on the
// kernel's side, over xdpnet's UDP.
func TestHTTPClientLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	port, conns := kernelHTTP(t, l)
	dns, dnsQueries := kernelDNS(t, l)
	s := labStack(t, l, sockapi.Config{Nameserver: dns})
	base := fmt.Sprintf("http://%s:%d", l.Peer.Addr.Addr(), port)
	client := func(keepAlive bool) *http.Client {
		tr := &http.Transport{DialContext: s.DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}
	}
	small, err := io.ReadAll(httpsvc.Stream(1000))
	require.NoError(t, err)

	t.Run("Bulk", func(t *testing.T) {
		const size = 32 << 20
		start := time.Now()
		require.NoError(t, get(client(true), base+"/bytes/33554432", size, nil))
		t.Logf("%d MiB in %v", size>>20, time.Since(start).Round(time.Millisecond))
	})
	// thousand makes 1000 requests, on one connection or a new one each,
	// and checks the server saw as many connections.
	thousand := func(t *testing.T, keepAlive bool, wantConns int64) {
		c, before := client(keepAlive), conns.Load()
		start := time.Now()
		for i := range 1000 {
			require.NoError(t, get(c, base+"/bytes/1000", 1000, small), "request %d", i)
			require.Less(t, time.Since(start), 30*time.Second, "request %d", i)
		}
		t.Logf("1000 requests (keep-alive %v) in %v", keepAlive, time.Since(start).Round(time.Millisecond))
		assert.Equal(t, wantConns, conns.Load()-before, "connections")
	}
	t.Run("KeepAlive1000", func(t *testing.T) { thousand(t, true, 1) })
	t.Run("NewConns1000", func(t *testing.T) { thousand(t, false, 1000) })
	t.Run("DNS", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := s.Resolver().LookupNetIP(ctx, "ip4", webName)
		require.NoError(t, err)
		assert.Equal(t, []netip.Addr{l.Peer.Addr.Addr()}, addrs)
		_, err = s.Resolver().LookupNetIP(ctx, "ip4", "nothing.xdpnet.test.")
		var dnsErr *net.DNSError
		require.ErrorAs(t, err, &dnsErr)
		assert.True(t, dnsErr.IsNotFound, "%v", err)
		assert.GreaterOrEqual(t, dnsQueries.Load(), int64(2), "the queries came over xdpnet")

		c, err := s.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", strings.TrimSuffix(webName, "."), port))
		require.NoError(t, err)
		assert.Equal(t, netip.AddrPortFrom(l.Peer.Addr.Addr(), port), c.RemoteAddr().(*net.TCPAddr).AddrPort())
		require.NoError(t, c.Close())
		require.NoError(t, get(client(true), fmt.Sprintf("http://%s:%d/bytes/1000", strings.TrimSuffix(webName, "."), port), 1000, small))
	})
}

// TestHTTPServerLab: curl on the kernel against net/http's server on
// xdpnet (the handler on a sockapi stack, in this process): 16 MiB
// checked against the header, 1,000 keep-alive requests in one curl,
// 1,000 requests on new connections, and a POST.
func TestHTTPServerLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":80")
	require.NoError(t, err)
	h := httpsvc.New(httpsvc.StackStatus(s))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + l.StackAddr.String()

	out := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "20", "-D", "-", "-o", "/dev/null", base+"/bytes/16777216")
	assert.Contains(t, out, httpsvc.SumHeader+": "+httpsvc.Sum(16<<20))

	// One curl, 1,000 URLs: curl reuses its connection for all of them.
	args := []string{"-sS", "--fail", "--max-time", "25", "-w", "%{http_code} %{size_download} %{num_connects}\n"}
	for range 1000 {
		args = append(args, "-o", "/dev/null", base+"/bytes/100")
	}
	// connects checks curl's 1000 lines of "code size connects" and
	// returns how many connections it opened.
	connects := func(out string) int {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 1000)
		n := 0
		for _, line := range lines {
			var code, size, c int
			_, err := fmt.Sscan(line, &code, &size, &c)
			require.NoError(t, err, line)
			require.Equal(t, 200, code)
			require.Equal(t, 100, size)
			n += c
		}
		return n
	}
	assert.Equal(t, 1, connects(l.Peer.Run(t, "curl", args...)), "keep-alive: one connection")

	// And 1,000 connections: "Connection: close" makes curl open one for
	// each URL.
	assert.Equal(t, 1000, connects(l.Peer.Run(t, "curl", append([]string{"-H", "Connection: close"}, args...)...)), "a connection each")

	data := bytes.Repeat([]byte("xdpnet"), 100_000)
	file := filepath.Join(t.TempDir(), "body")
	require.NoError(t, os.WriteFile(file, data, 0o644))
	out = l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "20", "--data-binary", "@"+file, base+"/sha256")
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), strings.TrimSpace(out))
	assert.Equal(t, int64(2002), h.Stats().Requests)
}

// TestHTTPClientExampleLab runs examples/httpclient in xdpnet's namespace:
// it resolves a name through the lab's DNS server and fetches from the
// kernel's HTTP server, all over xdpnet.
func TestHTTPClientExampleLab(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "httpclient")
	out, err := exec.Command("go", "build", "-o", bin, "../examples/httpclient").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	l := lab.New(t, lab.Config{})
	port, _ := kernelHTTP(t, l)
	dns, queries := kernelDNS(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s:%d/bytes/1048576", strings.TrimSuffix(webName, "."), port)
	out, err = l.Local.Command(ctx, bin, "-iface", l.Local.Link, "-addr", netip.PrefixFrom(l.StackAddr, 24).String(),
		"-dns", dns.String(), url).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "200 OK 1048576 bytes sha256 "+httpsvc.Sum(1<<20)+"\n", string(out))
	assert.NotZero(t, queries.Load())
}
