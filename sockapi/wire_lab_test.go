package sockapi_test

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestTCPOptionsLab checks on the wire, in a capture on the kernel's side
// (ss on this kernel shows no options), what xdpnet and the Linux kernel
// negotiate over AF_XDP, with xdpnet's TCP configured each way (sack:
// whether SACK-permitted must be in xdpnet's SYNs):
//   - both SYNs of a connection the kernel dials to xdpnet, and of one
//     xdpnet dials to the kernel, carry window scale (RFC 7323 2.2) and
//     timestamps (RFC 7323 3.2), and SACK-permitted (RFC 2018 2) where
//     sack says, and always in the kernel's SYN;
//   - then 4 MiB go each way at once over the connection xdpnet dialed,
//     with 2 % of the segments lost each way (iptables INPUT in the
//     kernel's namespace, and xdpnet's side losing 2 % of the frames it
//     receives: see TestInteropLossyLab): both ends send SACK blocks for
//     their holes if SACK was negotiated on it (both its SYNs offered it),
//     and none if not (RFC 2018 2: only once permitted).
func TestTCPOptionsLab(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  sockapi.Config
		sack bool
	}{
		{"Default", sockapi.Config{}, true},
		{"NoSACK", sockapi.Config{NoSACK: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) { testTCPOptions(t, c.cfg, c.sack) })
	}
}

func testTCPOptions(t *testing.T, cfg sockapi.Config, sack bool) {
	l := lab.New(t, lab.Config{})
	s, _, _ := faultyStack(t, l, cfg, nic.FaultConfig{}, 0.02)
	xln, err := s.Listen("tcp", ":7041")
	require.NoError(t, err)
	go serveEach(xln, func(net.Conn) {})
	kln := kernelListen(t, l)
	pcap := filepath.Join(t.TempDir(), "options.pcap")
	_, stop := l.Peer.Tcpdump(t, "-s", "128", "-U", "-w", pcap, "tcp")

	// The kernel dials xdpnet: a handshake, then the close.
	stack := netip.AddrPortFrom(l.StackAddr, 7041)
	var kc net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		kc, err = net.DialTimeout("tcp4", stack.String(), 5*time.Second)
		return err
	}))
	kc.Close()

	// xdpnet dials the kernel, and data goes both ways through loss.
	xc, peer := dialKernel(t, s, kln)
	l.Peer.RandomDrop(t, "INPUT", 0.02, "-p", "tcp")
	duplex(t, xc, peer, 4<<20, time.Minute)
	stop()

	segs := readCapture(t, pcap)
	kernelPort := netip.MustParseAddrPort(kln.Addr().String()).Port()
	dialed := map[string]string{} // the SYNs' options, by "<flags> <who>", of the connection each side dialed
	sackBlocks := map[string]int{}
	for _, g := range segs {
		who := "kernel"
		if g.src.Addr() == l.StackAddr {
			who = "xdpnet"
		}
		ours := g.src.Port() == kernelPort || g.dst.Port() == kernelPort // the connection xdpnet dialed
		if g.flags == "S" || g.flags == "S." {
			dialer := map[bool]string{true: "xdpnet", false: "kernel"}[ours]
			key := g.flags + " " + who + " (" + dialer + " dialed)"
			if _, ok := dialed[key]; !ok {
				dialed[key] = g.options
			}
		}
		if ours && sackBlock.MatchString(g.options) {
			sackBlocks[who]++
		}
	}
	for _, dialer := range []string{"kernel", "xdpnet"} {
		listener := map[string]string{"kernel": "xdpnet", "xdpnet": "kernel"}[dialer]
		for _, k := range []string{"S " + dialer, "S. " + listener} {
			k += " (" + dialer + " dialed)"
			opts, ok := dialed[k]
			require.True(t, ok, "no %s in the capture", k)
			t.Logf("%s: options [%s]", k, opts)
			assert.Regexp(t, `(^|,)wscale \d+(,|$)`, opts, "%s: window scale", k)
			assert.Regexp(t, `(^|,)TS val \d+ ecr \d+(,|$)`, opts, "%s: timestamps", k)
			if sack || strings.HasPrefix(k, "S kernel") {
				assert.Contains(t, opts, "sackOK", "%s: SACK-permitted", k)
			}
		}
	}
	negotiated := strings.Contains(dialed["S xdpnet (xdpnet dialed)"], "sackOK") &&
		strings.Contains(dialed["S. kernel (xdpnet dialed)"], "sackOK")
	t.Logf("SACK negotiated: %v; segments with SACK blocks: %v", negotiated, sackBlocks)
	for _, who := range []string{"kernel", "xdpnet"} {
		if negotiated {
			assert.NotZero(t, sackBlocks[who], "%s sent no SACK block through 2 %% loss", who)
		} else {
			assert.Zero(t, sackBlocks[who], "%s sent SACK blocks on a connection without SACK", who)
		}
	}
}

// sackBlock matches a SACK option with blocks, or a D-SACK, in tcpdump's
// options ("sack 1 {1449:2897}"); SACK-permitted is "sackOK".
var sackBlock = regexp.MustCompile(`(^|,)sack \d+ \{`)

// captured is one TCP segment of a capture, as tcpdump prints it.
type captured struct {
	src, dst netip.AddrPort
	flags    string // "S", "S.", ".", "P.", "F." ...
	options  string // what is inside "options [...]", or ""
}

// tcpdumpLine is a TCP segment in `tcpdump -n -r` output:
// "... IP 198.18.0.2.40000 > 198.18.0.3.5000: Flags [S], ..., options [mss 1460,...], length 0".
var tcpdumpLine = regexp.MustCompile(`IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[([^\]]*)\](?:.*?options \[([^\]]*)\])?`)

// readCapture reads a pcap file with tcpdump, within 30 s, into its TCP
// segments.
func readCapture(t *testing.T, pcap string) []captured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tcpdump", "-n", "-r", pcap).Output()
	require.NoError(t, err, "tcpdump -r %s", pcap)
	var segs []captured
	for _, line := range strings.Split(string(out), "\n") {
		m := tcpdumpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		segs = append(segs, captured{
			src:   netip.MustParseAddrPort(m[1] + ":" + m[2]),
			dst:   netip.MustParseAddrPort(m[3] + ":" + m[4]),
			flags: m[5], options: m[6],
		})
	}
	require.NotEmpty(t, segs, "no TCP segment in %s", pcap)
	return segs
}
