package sockapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestCloseWriteThenAbortLab: CloseWrite and then Close with SetLinger(0)
// put the FIN on the wire before the RST, and the RST comes from past the
// FIN, as the kernel's own client does in the same test: tcpdump in the
// listening kernel's namespace sees both, in that order.
func TestCloseWriteThenAbortLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	kl := kernelListen(t, l)
	port := netip.MustParseAddrPort(kl.Addr().String()).Port()
	lines := tcpdump(t, l.Peer, fmt.Sprintf("tcp port %d", port))

	// The kernel first, from its own address on the stack's link, for
	// the reference; then xdpnet, three times: the order must hold every
	// time.
	for i := range 4 {
		src := l.Local.Addr.Addr()
		var c net.Conn
		var err error
		if i == 0 {
			err = l.Local.Do(func() (err error) {
				c, err = net.Dial("tcp4", kl.Addr().String())
				return err
			})
		} else {
			src = l.StackAddr
			c, err = s.Dial("tcp", kl.Addr().String())
		}
		require.NoError(t, err)
		kc, err := kl.Accept()
		require.NoError(t, err)
		defer kc.Close()
		type closer interface {
			CloseWrite() error
			SetLinger(int) error
		}
		require.NoError(t, c.(closer).CloseWrite())
		require.NoError(t, c.(closer).SetLinger(0))
		require.NoError(t, c.Close())
		flags, seqs := closingSegments(t, lines, src, port)
		n := len(flags)
		require.Equal(t, []string{"F.", "R."}, flags[max(0, n-2):], "%v: connection %d sent %v", src, i, flags)
		require.Equal(t, seqs[n-2]+1, seqs[n-1], "%v: connection %d: the RST follows the FIN's sequence number", src, i)
	}
}

// closingSegments reads tcpdump lines until src sends a RST from a port
// other than port, and returns the flags and sequence numbers of what src
// sent since its SYN, pure ACKs left out (tcpdump -S prints them with no
// "seq": "Flags [F.], seq 123, ack ..." and "Flags [R.], seq 124, ...").
func closingSegments(t *testing.T, lines <-chan string, src netip.Addr, port uint16) ([]string, []uint64) {
	t.Helper()
	from := regexp.MustCompile(`IP ` + regexp.QuoteMeta(src.String()) + `\.(\d+) > .*Flags \[([^\]]*)\], seq (\d+)`)
	var flags []string
	var seqs []uint64
	deadline := time.After(5 * time.Second)
	for len(flags) == 0 || !strings.HasPrefix(flags[len(flags)-1], "R") {
		select {
		case line := <-lines:
			m := from.FindStringSubmatch(line)
			if m == nil || m[1] == fmt.Sprint(port) {
				continue
			}
			if m[2] == "S" { // the connection's SYN: start afresh
				flags, seqs = nil, nil
				continue
			}
			seq, err := strconv.ParseUint(strings.SplitN(m[3], ":", 2)[0], 10, 32)
			require.NoError(t, err)
			flags, seqs = append(flags, m[2]), append(seqs, seq)
		case <-deadline:
			t.Fatalf("%v sent no RST; it sent %v", src, flags)
		}
	}
	return flags, seqs
}

// tcpdump captures on h's link with filter and returns its output lines,
// once it is listening; it stops with the test (and after 60 s at most).
func tcpdump(t *testing.T, h *lab.Host, filter string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, "timeout", append([]string{"60", "tcpdump", "-i", h.Link, "-n", "-S", "-l", "--immediate-mode"}, strings.Fields(filter)...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); cmd.Wait() })
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
			}
		}
	}()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening")
	}
	return lines
}
