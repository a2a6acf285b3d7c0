package sockapi_test

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// kernelListenBacklog listens with the kernel's stack at addr in h's
// namespace with listen(2)'s backlog (Go's net.Listen always passes
// somaxconn).
func kernelListenBacklog(t *testing.T, h *lab.Host, addr netip.AddrPort, backlog int) net.Listener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, h.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "listener")
		defer f.Close()
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
			return err
		}
		if err := syscall.Listen(fd, backlog); err != nil {
			return err
		}
		ln, err = net.FileListener(f)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

var bytesAcked = regexp.MustCompile(`bytes_acked:(\d+)`)

// peerAcked counts the peer kernel's connections to dst whose byte of
// data the server acknowledged (bytes_acked 2: the SYN and the byte), and
// the others: those the server keeps half-open, having dropped the ACK
// that completes the handshake (and the data with it).
func peerAcked(t *testing.T, l *lab.Lab, dst netip.AddrPort) (acked, waiting int) {
	t.Helper()
	out := l.Peer.Run(t, "ss", "-tniH", "state", "established", "dst", dst.String())
	for _, m := range bytesAcked.FindAllStringSubmatch(out, -1) {
		if n, _ := strconv.Atoi(m[1]); n >= 2 {
			acked++
		} else {
			waiting++
		}
	}
	return acked, waiting
}

// TestListenBacklogLab: a listener with backlog 10 whose app does not
// accept, and 15 kernel clients that each connect and send a byte. The
// accept queue takes 10 (the kernel's beside it, 11: Linux allows one
// past the backlog); of the others, those whose SYN came while there was
// room stay half-open, their ACKs dropped (ListenOverflows) and their
// SYN,ACKs sent again, and the SYNs that came after are dropped (the
// client sends them again). Once the app accepts, they complete, and all
// 15 echo their byte.
func TestListenBacklogLab(t *testing.T) {
	const backlog, clients = 10, 15
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{ListenBacklog: backlog})
	for _, target := range []struct {
		name   string
		listen func() net.Listener
		want   int
		stats  func() (overflows, retrans uint64)
	}{
		{"xdpnet", func() net.Listener {
			ln, err := s.Listen("tcp", ":7020")
			require.NoError(t, err)
			return ln
		}, backlog, func() (uint64, uint64) { c := s.Counters(); return c.TCPExt.ListenOverflows, c.TCP.RetransSegs }},
		{"kernel", func() net.Listener {
			return kernelListenBacklog(t, l.Local, netip.AddrPortFrom(l.Local.Addr.Addr(), 7020), backlog)
		}, backlog + 1, func() (uint64, uint64) {
			m := l.Local.Netstat(t)
			return m["TcpExtListenOverflows"], m["TcpRetransSegs"]
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			ln := target.listen()
			dst := netip.MustParseAddrPort(ln.Addr().String())
			over0, retrans0 := target.stats()
			errs := make(chan error, clients)
			for i := range clients {
				go func() {
					errs <- l.Peer.Do(func() error {
						c, err := net.DialTimeout("tcp4", dst.String(), 20*time.Second)
						if err != nil {
							return fmt.Errorf("client %d: %w", i, err)
						}
						defer c.Close()
						c.SetDeadline(time.Now().Add(30 * time.Second))
						buf := []byte{byte(i)}
						if _, err := c.Write(buf); err != nil {
							return fmt.Errorf("client %d: %w", i, err)
						}
						if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
							return fmt.Errorf("client %d: echo %v: %w", i, buf, err)
						}
						return nil
					})
				}()
			}
			// The queue fills, and the rest wait: their SYN,ACKs go again
			// (a round at 1 s) and their ACKs are dropped again.
			var acked, waiting int
			if !assert.Eventually(t, func() bool {
				over, retrans := target.stats()
				acked, waiting = peerAcked(t, l, dst)
				return acked == target.want && over > over0 && (waiting == 0 || retrans > retrans0)
			}, 10*time.Second, 10*time.Millisecond) {
				over, retrans := target.stats()
				t.Fatalf("acked %d, waiting %d, overflows %d, retransmitted %d; the peer's sockets:\n%s",
					acked, waiting, over-over0, retrans-retrans0, l.Peer.Run(t, "ss", "-tnai"))
			}
			over, retrans := target.stats()
			t.Logf("%s: backlog %d: %d connections in the accept queue, %d waiting; %d ACK(s) or SYN(s) dropped (ListenOverflows), %d SYN,ACK(s) retransmitted",
				target.name, backlog, acked, waiting, over-over0, retrans-retrans0)
			acked, _ = peerAcked(t, l, dst)
			assert.Equal(t, target.want, acked, "the accept queue holds no more after the retransmissions")

			go echoServe(ln)
			for range clients {
				assert.NoError(t, <-errs)
			}
			ln.Close()
		})
	}
}
