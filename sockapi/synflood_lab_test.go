package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/tcp"
)

// median and maxOf are those of sorted latencies, or 0 if none.
func median(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[len(lat)/2]
}

func maxOf(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[len(lat)-1]
}

// echoServe echoes on every connection ln accepts.
func echoServe(ln net.Listener) {
	serveEach(ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.Copy(c, c)
	})
}

// TestSYNFloodLab floods xdpnet's echo listener, and then the kernel's
// beside it on the same link (Local's 198.18.0.1), with SYNs from five
// spoofed sources that never answer, while a kernel client makes 100
// connections, each echoing a byte: all succeed during the flood and
// after it, on both. The SYN queue fills within the flood's first
// milliseconds; SYN cookies serve the rest.
func TestSYNFloodLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	go echoServe(ln)
	var kln net.Listener
	require.NoError(t, l.Local.Do(func() (err error) {
		kln, err = net.Listen("tcp4", netip.AddrPortFrom(l.Local.Addr.Addr(), 7).String())
		return err
	}))
	t.Cleanup(func() { kln.Close() })
	go echoServe(kln)
	l.SpoofOnPeer(t)

	const perSource, interval = 3000, 100 * time.Microsecond
	for _, target := range []struct {
		name  string
		addr  netip.Addr
		stats func() (cookies, recv, failed uint64)
	}{
		{"xdpnet", l.StackAddr, func() (uint64, uint64, uint64) {
			st := s.Counters().TCPExt
			return st.SyncookiesSent, st.SyncookiesRecv, st.SyncookiesFailed
		}},
		{"kernel", l.Local.Addr.Addr(), func() (uint64, uint64, uint64) {
			m := l.Local.Netstat(t)
			return m["TcpExtSyncookiesSent"], m["TcpExtSyncookiesRecv"], m["TcpExtSyncookiesFailed"]
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			addr := netip.AddrPortFrom(target.addr, 7)
			retrans0 := l.Peer.Netstat(t)["TcpExtTCPSynRetrans"]
			cookies0, _, _ := target.stats()
			start := time.Now()
			flood := l.StartSYNFlood(t, addr, perSource, interval)
			// Once the first cookies go out, the SYN queue is full.
			require.Eventually(t, func() bool { c, _, _ := target.stats(); return c > cookies0 }, 10*time.Second, time.Millisecond)
			lat, fails := l.EchoConnects(t, addr, 100)
			during := flood.Running()
			sent := flood.Wait(t)
			took := time.Since(start)
			latAfter, failsAfter := l.EchoConnects(t, addr, 100)
			cookies, recv, failed := target.stats()
			synRetrans := l.Peer.Netstat(t)["TcpExtTCPSynRetrans"] - retrans0
			t.Logf("%s: %d SYNs in %v (%.0f/s); %d/100 connects during the flood (p50 %v, max %v), %d/100 after (p50 %v, max %v); %d cookies sent, %d received, %d failed; the client retransmitted %d SYN(s)",
				target.name, sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), len(lat), median(lat), maxOf(lat),
				len(latAfter), median(latAfter), maxOf(latAfter), cookies-cookies0, recv, failed, synRetrans)
			assert.True(t, during, "the flood ended before the 100 connects did: make it longer")
			assert.Empty(t, fails, "during the flood")
			assert.Empty(t, failsAfter, "after the flood")
		})
	}
}

// TestSYNFloodThenConnectLab is the case: 260 spoofed SYNs (more
// than the 256-entry SYN queue holds), then one legitimate connect, which
// succeeds at once, without a SYN retransmission.
func TestSYNFloodThenConnectLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":7")
	require.NoError(t, err)
	go echoServe(ln)
	l.SpoofOnPeer(t)
	addr := netip.AddrPortFrom(l.StackAddr, 7)
	flood := l.StartSYNFlood(t, addr, 52, time.Millisecond) // 5 × 52 = 260
	require.Equal(t, 260, flood.Wait(t))
	require.Eventually(t, func() bool { return s.Counters().TCPExt.SyncookiesSent > 0 }, 5*time.Second, time.Millisecond,
		"the SYN queue fills: 256 half-open, then cookies")

	retrans0 := l.Peer.Netstat(t)["TcpExtTCPSynRetrans"]
	lat, fails := l.EchoConnects(t, addr, 1)
	require.Empty(t, fails)
	assert.Zero(t, l.Peer.Netstat(t)["TcpExtTCPSynRetrans"]-retrans0, "the connect needed no SYN retransmission")
	st := s.Counters().TCPExt
	t.Logf("connect after 260 spoofed SYNs: %v; %d cookies sent, %d received", lat[0], st.SyncookiesSent, st.SyncookiesRecv)
	assert.Equal(t, uint64(1), st.SyncookiesRecv)
}

// TestSyncookieOnTheWireLab: with a SYN queue of one, filled by one
// spoofed SYN, a kernel client's SYN (MSS, window scale, SACK-permitted
// and timestamps, as Linux offers them) gets a cookie SYN,ACK with our
// MSS, timestamps and window scale, laid out as Linux's, and no SACK (off
// by default), as tcpdump on the client's side sees it; the handshake's ACK brings the
// connection back, which then uses them: the client scales our window
// by our shift (ss), and every segment carries timestamps.
func TestSyncookieOnTheWireLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	cfg := sockapi.Config{}
	sockapi.SetTCPHook(&cfg, func(c *tcp.Config) { c.SynBacklog = 1 })
	s := labStack(t, l, cfg)
	ln, err := s.Listen("tcp", ":7030")
	require.NoError(t, err)
	go echoServe(ln)
	l.SpoofOnPeer(t)
	addr := netip.AddrPortFrom(l.StackAddr, 7030)
	l.StartSYNFlood(t, addr, 1, time.Millisecond).Wait(t)
	lines, stop := l.Peer.Tcpdump(t, "-v", "tcp", "and", "host", l.Peer.Addr.Addr().String(), "and", "port", "7030")

	var c net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr.String(), 5*time.Second)
		return err
	}))
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := []byte{'x'}
	_, err = c.Write(buf)
	require.NoError(t, err)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), s.Counters().TCPExt.SyncookiesRecv, "the connection came back from a cookie")
	// ss prints the send scale (ours, as the client uses it: 7, for the
	// 6 MiB the receive buffer may grow to), then the receive scale.
	ss := l.Peer.Run(t, "ss", "-tniH", "state", "established", "dst", addr.String())
	assert.Regexp(t, `wscale:7,\d+`, ss)
	stop()
	var synack, data string
	for line := range lines {
		switch {
		case strings.Contains(line, "Flags [S.]"):
			synack = line
		case strings.Contains(line, l.StackAddr.String()+".7030 >") && strings.Contains(line, "Flags [P.]"):
			data = line
		}
	}
	t.Logf("cookie SYN,ACK: %s; echo: %s", synack, data)
	require.NotEmpty(t, synack, "no SYN,ACK captured")
	// Laid out as Linux's, SACK-permitted kept in the cookie (the
	// kernel's SYN offered it).
	assert.Regexp(t, `options \[mss 1460,sackOK,TS val \d+ ecr \d+,nop,wscale 7\]`, synack)
	assert.Regexp(t, `TS val \d+ ecr \d+`, data, "the echo carries timestamps")
}
