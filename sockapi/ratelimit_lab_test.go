package sockapi_test

import (
	"context"
	"fmt"
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

// TestOutOfWindowACKRateLimitLab: two segments outside the window, 100 ms
// apart, forged (hping3) on an established connection's 4-tuple. xdpnet
// answers as many as the kernel answers on its own connection in the
// same test: one for a pure ACK or a SYN (tcp_invalid_ratelimit, 500 ms,
// RFC 5961 7), both for a FIN (a segment with data or a FIN is exempt, as
// in Linux's tcp_oow_rate_limited). 100 ms apart, inside the 500 ms, so
// that the two never reach xdpnet's poller in one receive batch, which
// it answers with one ACK however many segments asked (1 ms apart they
// did, under the race detector's load, and the FIN case counted 1).
func TestOutOfWindowACKRateLimitLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	sl, err := s.Listen("tcp", ":7010")
	require.NoError(t, err)
	defer sl.Close()
	kl := kernelListen(t, l)

	// xdpnet's connection: the kernel in the peer's namespace dials it.
	var kc net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		kc, err = net.Dial("tcp4", netip.AddrPortFrom(l.StackAddr, 7010).String())
		return err
	}))
	defer kc.Close()
	sc, err := sl.Accept()
	require.NoError(t, err)
	defer sc.Close()
	// The kernel's: its client in the stack's namespace dials the peer.
	var cc net.Conn
	require.NoError(t, l.Local.Do(func() (err error) {
		cc, err = net.Dial("tcp4", kl.Addr().String())
		return err
	}))
	defer cc.Close()
	kc2, err := kl.Accept()
	require.NoError(t, err)
	defer kc2.Close()

	type side struct {
		name     string
		from     *lab.Host      // where the forged segments are sent from
		src, dst netip.AddrPort // the connection, as the forger sees it
		capture  *lab.Host
	}
	sides := []side{
		{"xdpnet", l.Peer, netip.MustParseAddrPort(kc.LocalAddr().String()), netip.AddrPortFrom(l.StackAddr, 7010), l.Peer},
		{"kernel", l.Local, netip.MustParseAddrPort(cc.LocalAddr().String()), netip.MustParseAddrPort(kl.Addr().String()), l.Peer},
	}
	answers := map[string][]int{}
	for _, sd := range sides {
		lines, stop := sd.capture.Tcpdump(t, "-S", "tcp", "and", "src", "host", sd.dst.Addr().String(),
			"and", "src", "port", fmt.Sprint(sd.dst.Port()), "and", "dst", "port", fmt.Sprint(sd.src.Port()))
		for _, flag := range []string{"-A", "-S", "-F"} {
			args := []string{"-q", "-c", "2", "-i", "u100000", flag, "-k",
				"-s", fmt.Sprint(sd.src.Port()), "-p", fmt.Sprint(sd.dst.Port()), "-M", "123456789", "-L", "1", "-w", "65535", sd.dst.Addr().String()}
			if flag == "-F" {
				args = append(args, "-A") // FIN,ACK, as a TCP sends it
			}
			// hping3 exits 1 when it saw no answer itself, which races
			// with the connection's socket: its count says what went.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, _ := sd.from.Command(ctx, "hping3", args...).CombinedOutput()
			cancel()
			require.Contains(t, string(out), "2 packets transmitted", "%s %s: %s", sd.name, flag, out)
			// Count the answers for 300 ms, then wait out the 500 ms.
			n := 0
			for end := time.After(300 * time.Millisecond); ; {
				select {
				case line := <-lines:
					if strings.Contains(line, "Flags [.]") {
						n++
					}
					continue
				case <-end:
				}
				break
			}
			answers[sd.name] = append(answers[sd.name], n)
			time.Sleep(300 * time.Millisecond)
		}
		stop()
	}
	t.Logf("answers to two out-of-window ACKs, SYNs, FIN,ACKs: xdpnet %v, kernel %v", answers["xdpnet"], answers["kernel"])
	assert.Equal(t, []int{1, 1, 2}, answers["kernel"], "the kernel's figures, as Linux's tcp_oow_rate_limited predicts")
	assert.Equal(t, answers["kernel"], answers["xdpnet"])
}
