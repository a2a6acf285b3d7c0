package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SpoofedSources are the source addresses of SYN floods: on the lab's
// link, so that SYN,ACKs to them go back over it (they resolve by ARP to
// the peer), and inside 198.18.0.0/15.
var SpoofedSources = []netip.Addr{
	netip.MustParseAddr("198.18.0.101"), netip.MustParseAddr("198.18.0.102"), netip.MustParseAddr("198.18.0.103"),
	netip.MustParseAddr("198.18.0.104"), netip.MustParseAddr("198.18.0.105"),
}

// SpoofOnPeer adds SpoofedSources to the peer's end of the link, so that
// it answers ARP for them, and drops the TCP segments sent to them, so
// that its kernel sends no resets for the SYN,ACKs: a SYN from them is
// never answered, as from a host that does not exist. It is undone with
// the namespace.
func (l *Lab) SpoofOnPeer(tb testing.TB) {
	tb.Helper()
	for _, a := range SpoofedSources {
		l.Peer.Run(tb, "ip", "addr", "add", a.String()+"/32", "dev", l.Peer.Link)
		l.Peer.Run(tb, "iptables", "-A", "INPUT", "-p", "tcp", "-d", a.String(), "-j", "DROP")
	}
}

// SYNFlood is hping3 in the peer's namespace sending SYNs from each of
// SpoofedSources (see SpoofOnPeer): bounded in count, and in time by
// `timeout`, whatever happens. The senders run at nice 19: a real flood
// comes from elsewhere, and here the senders share the lab's two CPUs
// with the stack under test. (The kernel's receive path runs in the
// sender's system call on veth, at whatever priority; xdpnet's poller is
// a thread of its own, which five senders at full speed would starve.)
type SYNFlood struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once every sender has exited
	out    []strings.Builder
}

// floodLimit bounds a flood's senders in time.
const floodLimit = 30 * time.Second

// StartSYNFlood starts count SYNs from each spoofed source to dst, one
// every interval (hping3 -i), and returns once they flow: once the peer
// has sent 100 frames more per sender (or the senders ended). The flood stops by
// itself; Stop, or the end of tb, stops it sooner.
func (l *Lab) StartSYNFlood(tb testing.TB, dst netip.AddrPort, count int, interval time.Duration) *SYNFlood {
	tb.Helper()
	tx0 := l.Peer.LinkStat(tb, "tx_packets")
	ctx, cancel := context.WithTimeout(context.Background(), floodLimit+5*time.Second)
	f := &SYNFlood{cancel: cancel, done: make(chan struct{}), out: make([]strings.Builder, len(SpoofedSources))}
	var wg sync.WaitGroup
	for i, src := range SpoofedSources {
		cmd := l.Peer.Command(ctx, "timeout", "-s", "INT", strconv.Itoa(int(floodLimit.Seconds())),
			"nice", "-n", "19", "hping3", "-q", "-S", "-a", src.String(), "-p", strconv.Itoa(int(dst.Port())),
			"-i", fmt.Sprintf("u%d", max(1, interval.Microseconds())), "-c", strconv.Itoa(count), dst.Addr().String())
		cmd.Stdout, cmd.Stderr = &f.out[i], &f.out[i]
		// Stop interrupts timeout, which passes the signal on: killing it
		// would leave hping3 flooding.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			wg.Wait()
			tb.Fatalf("lab: start hping3 (apt-get install hping3): %v", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); cmd.Wait() }()
	}
	go func() { wg.Wait(); cancel(); close(f.done) }()
	tb.Cleanup(func() { cancel(); <-f.done })
	for deadline := time.Now().Add(10 * time.Second); f.Running() && l.Peer.LinkStat(tb, "tx_packets") < tx0+uint64(100*len(SpoofedSources)); {
		if time.Now().After(deadline) {
			tb.Fatalf("lab: the SYN flood sent nothing in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	return f
}

// LinkStat is the kernel's counter name ("tx_packets", "rx_dropped") of
// h's end of the link.
func (h *Host) LinkStat(tb testing.TB, name string) uint64 {
	tb.Helper()
	out := h.Run(tb, "cat", "/sys/class/net/"+h.Link+"/statistics/"+name)
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		tb.Fatalf("lab: %s of %s: %q", name, h.Link, out)
	}
	return n
}

// Running reports whether some sender still floods.
func (f *SYNFlood) Running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

var hpingSent = regexp.MustCompile(`(\d+) packets transmitted`)

// Wait waits for the senders to finish and returns how many SYNs they
// report sent.
func (f *SYNFlood) Wait(tb testing.TB) int {
	tb.Helper()
	<-f.done
	sent := 0
	for i := range f.out {
		m := hpingSent.FindStringSubmatch(f.out[i].String())
		if m == nil {
			tb.Fatalf("lab: hping3 reported no count: %s", f.out[i].String())
		}
		n, _ := strconv.Atoi(m[1])
		sent += n
	}
	return sent
}

// Stop interrupts the senders and waits for them to exit.
func (f *SYNFlood) Stop() {
	f.cancel()
	<-f.done
}

// Netstat reads the counters of h's kernel, /proc/net/netstat's and
// snmp's, by their line's name and column: "TcpExtSyncookiesSent",
// "TcpRetransSegs".
func (h *Host) Netstat(tb testing.TB) map[string]uint64 {
	tb.Helper()
	lines := strings.Split(h.Run(tb, "cat", "/proc/net/netstat", "/proc/net/snmp"), "\n")
	m := map[string]uint64{}
	// Each table is a line of names and a line of values, both led by
	// the table's name ("TcpExt:").
	for i := 0; i+1 < len(lines); i++ {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) < 2 || len(names) != len(values) || names[0] != values[0] {
			continue
		}
		if _, err := strconv.ParseUint(values[1], 10, 64); err != nil {
			continue // two lines of names
		}
		for j := 1; j < len(names); j++ {
			v, _ := strconv.ParseUint(values[j], 10, 64)
			m[strings.TrimSuffix(names[0], ":")+names[j]] = v
		}
		i++
	}
	return m
}

// EchoConnects has the kernel in the peer's namespace make n connections
// to addr, an echo server, one after the other: each connects, sends a
// byte, reads its echo and closes, within 10 s. It returns the latencies
// of those that succeeded, sorted, and the error of each that did not.
func (l *Lab) EchoConnects(tb testing.TB, addr netip.AddrPort, n int) (lat []time.Duration, fails []error) {
	tb.Helper()
	err := l.Peer.Do(func() error {
		buf := []byte{'x'}
		for i := range n {
			start := time.Now()
			c, err := net.DialTimeout("tcp4", addr.String(), 10*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err = c.Write(buf); err == nil {
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
			}
			if err != nil {
				fails = append(fails, fmt.Errorf("connection %d: %w", i, err))
				continue
			}
			lat = append(lat, time.Since(start))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(lat)
	return lat, fails
}
