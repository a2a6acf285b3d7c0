package main

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

var cookiesSent = regexp.MustCompile(`TCP SYN cookies: (\d+) sent, (\d+) received`)

// TestServeSYNFloodLab is the black-box case against the binary:
// `xdpnet serve`'s TCP echo on port 7 under a flood of spoofed SYNs (5 ×
// 3,000) while a kernel client connects 100 times, echoing a byte each
// time: every connect succeeds, during the flood and after, and the exit
// line counts the cookies.
func TestServeSYNFloodLab(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	s := startServe(t, l, bin)
	require.Contains(t, s.next(t), "xdpnet: serving")
	l.SpoofOnPeer(t)
	echo := netip.AddrPortFrom(l.StackAddr, 7)

	flood := l.StartSYNFlood(t, echo, 3000, 100*time.Microsecond)
	lat, fails := l.EchoConnects(t, echo, 100)
	during := flood.Running()
	sent := flood.Wait(t)
	latAfter, failsAfter := l.EchoConnects(t, echo, 100)
	assert.True(t, during, "the flood ended before the 100 connects did")
	require.Empty(t, fails, "during the flood")
	require.Empty(t, failsAfter, "after the flood")

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for line := range s.lines {
		rest = append(rest, line)
	}
	require.NoError(t, s.cmd.Wait(), "exit status after SIGTERM; stderr: %s", s.stdout)
	m := cookiesSent.FindStringSubmatch(strings.Join(rest, "\n"))
	require.NotNil(t, m, "exit lines: %q", rest)
	cookies, _ := strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	assert.Greater(t, cookies, 0)
	assert.GreaterOrEqual(t, recv, 1)
	t.Logf("serve: %d SYNs; connects p50 %v during, %v after; %d cookies sent, %d received",
		sent, lat[len(lat)/2], latAfter[len(latAfter)/2], cookies, recv)
}
