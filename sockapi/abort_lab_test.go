package sockapi_test

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
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
	lines, _ := l.Peer.Tcpdump(t, "-S", "tcp", "port", fmt.Sprint(port))

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
