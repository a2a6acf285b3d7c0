package sockapi_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestSACKLab: against the Linux kernel over AF_XDP, with SACK on (the default),
// SACK-permitted is in
// both SYNs of a connection each way, as tcpdump on the kernel's side
// sees them (ss on this kernel does not show it): xdpnet dialing the
// kernel, and the kernel dialing xdpnet. Then, with 2 % of xdpnet's
// segments to the kernel dropped (iptables in the kernel's namespace), a
// 4 MiB echo through xdpnet comes back intact, and the kernel's SACK
// blocks for the holes reach xdpnet's scoreboard (counted).
func TestSACKLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":7040")
	require.NoError(t, err)
	go echoServe(ln)
	kln := kernelListen(t, l)
	go func() {
		if c, err := kln.Accept(); err == nil {
			c.Close()
		}
	}()
	lines, stop := l.Peer.Tcpdump(t, "-v", "tcp[tcpflags] & tcp-syn != 0")

	c, err := s.Dial("tcp", kln.Addr().String())
	require.NoError(t, err)
	c.Close()
	addr := netip.AddrPortFrom(l.StackAddr, 7040)
	var kc net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		kc, err = net.DialTimeout("tcp4", addr.String(), 5*time.Second)
		return err
	}))
	defer kc.Close()
	l.Peer.Run(t, "iptables", "-A", "INPUT", "-p", "tcp", "--sport", "7040",
		"-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP")

	want := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{10}).Read(want)
	kc.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	go kc.Write(want)
	got := make([]byte, len(want))
	_, err = io.ReadFull(kc, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the echo differs")
	counters := s.Counters()
	st := counters.TCPExt
	t.Logf("4 MiB echoed in %v; SACK blocks received %d (D-SACKs %d), D-SACKs sent %d, %d retransmitted",
		time.Since(start), st.SACKBlocksRecv, st.TCPDSACKRecv, st.DSACKsSent, counters.TCP.RetransSegs)
	assert.NotZero(t, st.SACKBlocksRecv, "the kernel's SACK blocks were taken")

	stop()
	syns := map[string]string{} // "S" or "S." by source
	for line := range lines {
		switch {
		case strings.Contains(line, "Flags [S]"):
			syns["S "+srcOf(line)] = line
		case strings.Contains(line, "Flags [S.]"):
			syns["S. "+srcOf(line)] = line
		}
	}
	stack, kernel := l.StackAddr.String(), l.Peer.Addr.Addr().String()
	for _, k := range []string{"S " + stack, "S. " + kernel, "S " + kernel, "S. " + stack} {
		t.Logf("%s: %s", k, syns[k])
		assert.Contains(t, syns[k], "sackOK", k)
	}
	// Ours, laid out as Linux's.
	assert.Regexp(t, `options \[mss 1460,sackOK,TS val \d+ ecr 0,nop,wscale \d+\]`, syns["S "+stack])
	assert.Regexp(t, `options \[mss 1460,sackOK,TS val \d+ ecr \d+,nop,wscale \d+\]`, syns["S. "+stack])
}

// srcOf is the source address of a tcpdump -v line's second line
// ("    198.18.0.2.7040 > 198.18.0.3.41234: Flags ...").
func srcOf(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	a := f[0]
	if i := strings.LastIndexByte(a, '.'); i > 0 {
		a = a[:i]
	}
	return a
}
