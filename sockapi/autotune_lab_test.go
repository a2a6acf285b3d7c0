package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// ssWindow reads, from `ss -tin` in the kernel's namespace, the window
// the kernel's connection to dst has from its peer (snd_wnd) and the
// peer's window scale (the first of wscale:snd,rcv). ok is false if the
// connection is not listed.
func ssWindow(t *testing.T, l *lab.Lab, dst netip.AddrPort) (wnd, scale int, ok bool) {
	t.Helper()
	out := l.Peer.Run(t, "ss", "-tin", "dst", dst.String())
	m := ssWindowRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	scale, _ = strconv.Atoi(m[1])
	wnd, _ = strconv.Atoi(m[2])
	return wnd, scale, true
}

var ssWindowRe = regexp.MustCompile(`wscale:(\d+),\d+(?s:.*)snd_wnd:(\d+)`)

// TestRecvAutoTuneLab: against the Linux kernel over AF_XDP, the kernel
// sends to xdpnet as fast as it can while xdpnet's app reads everything,
// and `ss -tin` on the kernel's side shows the window xdpnet offers grow
// past its initial 128 KiB (scaled by 7, the scale chosen for the 6 MiB
// maximum), never past 6 MiB. With RecvBufferMax at 128 KiB (auto-tuning
// off) it stays at 128 KiB or less. Each transfer runs 2 s; the
// throughputs are logged, not asserted. The kernel's congestion control is its
// default (bbr here).
func TestRecvAutoTuneLab(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  sockapi.Config
	}{{"auto-tuned", sockapi.Config{}}, {"fixed", sockapi.Config{RecvBufferMax: 128 << 10}}} {
		t.Run(c.name, func(t *testing.T) {
			l := lab.New(t, lab.Config{})
			s := labStack(t, l, c.cfg)
			ln, err := s.Listen("tcp", ":7050")
			require.NoError(t, err)
			read := make(chan int64, 1)
			go func() {
				sc, err := ln.Accept()
				if err != nil {
					read <- 0
					return
				}
				defer sc.Close()
				n, _ := io.Copy(io.Discard, sc)
				read <- n
			}()
			addr := netip.AddrPortFrom(l.StackAddr, 7050)
			var kc net.Conn
			require.NoError(t, l.Peer.Do(func() (err error) {
				kc, err = net.DialTimeout("tcp4", addr.String(), 5*time.Second)
				return err
			}))
			const limit = 2 * time.Second
			start := time.Now()
			kc.SetWriteDeadline(start.Add(limit))
			written := make(chan int64, 1)
			go func() {
				buf := make([]byte, 256<<10)
				n := int64(0)
				for time.Since(start) < limit {
					m, err := kc.Write(buf)
					n += int64(m)
					if err != nil {
						break
					}
				}
				written <- n
			}()
			most, scale, samples := 0, -1, 0
			for time.Since(start) < limit {
				if wnd, sc, ok := ssWindow(t, l, addr); ok {
					most, scale = max(most, wnd), sc
					samples++
				}
				time.Sleep(20 * time.Millisecond)
			}
			kc.SetWriteDeadline(time.Now()) // ends the writer
			sent := <-written
			kc.Close()
			got := <-read
			elapsed := time.Since(start)
			t.Logf("%s: largest window the kernel saw %d bytes (wscale %d, %d samples); %d MiB in %v (%.2f Gbit/s)",
				c.name, most, scale, samples, got>>20, elapsed.Round(time.Millisecond), float64(got)*8/elapsed.Seconds()/1e9)
			require.Positive(t, samples, "ss listed the connection")
			assert.Equal(t, sent, got, "every byte written was read")
			if c.name == "fixed" {
				assert.LessOrEqual(t, most, 128<<10)
				assert.Equal(t, 2, scale, "the scale for 128 KiB")
				return
			}
			assert.Equal(t, 7, scale, "the scale for 6 MiB")
			assert.Greater(t, most, 128<<10, "the window grew past the initial buffer")
			assert.LessOrEqual(t, most, 6<<20)
		})
	}
}
