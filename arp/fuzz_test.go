package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Operations of a FuzzInput program. Each is one byte, followed by its
// arguments.
const (
	opInput     = iota // n, then n bytes given to Input as a wire.ARP view
	opAdvance          // 2 bytes: milliseconds to add to the clock
	opResolve          // last byte of 198.18.0.x, packet length
	opPoll             // how many frames Output gives before the caller stops (no buffer), 0 for all
	opAddStatic        // last byte of 198.18.0.x, last byte of 02:00:00:00:00:x
	numOps
)

// prog assembles a FuzzInput program.
type prog []byte

func (p prog) input(a []byte) prog       { return append(append(p, opInput, byte(len(a))), a...) }
func (p prog) advance(ms uint16) prog    { return append(p, opAdvance, byte(ms>>8), byte(ms)) }
func (p prog) resolve(host, n byte) prog { return append(p, opResolve, host, n) }
func (p prog) poll(limit byte) prog      { return append(p, opPoll, limit) }

// FuzzInput runs programs of received bytes (through the wire.ARP view),
// Resolves, Outputs, static entries and clock steps against a small cache,
// and checks its invariants after every step: no panic, at most MaxEntries
// entries, queued bytes within MaxQueueBytes, consistent lists and timers,
// and nothing left due after Output was called until it gave nothing.
func FuzzInput(f *testing.F) {
	hostA := ipA.As4()[3]
	f.Add([]byte(prog{}.
		resolve(hostA, 40).poll(0).
		input(reply(macA, ipA, ourMAC, ourIP)).poll(0).
		advance(2000).resolve(hostA, 10).poll(0)))
	f.Add([]byte(prog{}.
		input(request(macA, ipA, ourIP)).
		input(request(macB, ipB, ipB)). // gratuitous
		input(request(macB, netip.IPv4Unspecified(), ourIP)).poll(1).poll(0)))
	f.Add([]byte(prog{}.
		resolve(hostA, 100).resolve(hostA, 100).poll(0).
		advance(150).poll(0).advance(300).poll(0).advance(500).poll(0).
		resolve(hostA, 1).advance(600).resolve(hostA, 1).poll(0)))
	f.Add([]byte(prog{}.input(reply(macA2, ipA, macB, ipB)).input(request(macA, ipA, ourIP)[:20])))
	f.Add([]byte{opAddStatic, hostA, 0x0a, opResolve, hostA, 5, opPoll, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := New(Config{
			MAC: ourMAC, Addrs: []netip.Prefix{netip.PrefixFrom(ourIP, 15)},
			MaxEntries: 8, MaxQueue: 3, MaxQueueBytes: 200,
			ReachableTime: time.Second, RetransTime: 100 * time.Millisecond, MaxRetries: 2, FailedTime: 500 * time.Millisecond,
		})
		require.NoError(t, err)
		now := time.Hour // any epoch
		arg := func() byte {
			if len(b) == 0 {
				return 0
			}
			x := b[0]
			b = b[1:]
			return x
		}
		for len(b) > 0 {
			switch arg() % numOps {
			case opInput:
				n := min(int(arg()), len(b))
				c.Input(now, b[:n])
				b = b[n:]
			case opAdvance:
				now += time.Duration(arg())<<8*time.Millisecond + time.Duration(arg())*time.Millisecond
			case opResolve:
				host, n := arg(), arg()
				mac, v := c.Resolve(now, netip.AddrFrom4([4]byte{198, 18, 0, host}), make([]byte, n))
				require.Equal(t, v == Send, mac != nil, "verdict %v with MAC %v", v, mac)
			case opPoll:
				limit := int(arg())
				pollN(c, now, limit)
				if at, ok := c.Deadline(); ok && limit == 0 {
					require.Greater(t, at, now, "work left due after a complete Output")
				}
			case opAddStatic:
				ip, mac := netip.AddrFrom4([4]byte{198, 18, 0, arg()}), net.HardwareAddr{0x02, 0, 0, 0, 0, arg()}
				if err := c.AddStatic(now, ip, mac); err == nil {
					e, _ := c.Lookup(now, ip)
					require.Equal(t, Static, e.State)
				}
			}
			if err := invariants(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}
