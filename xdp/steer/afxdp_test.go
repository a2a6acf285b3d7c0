package steer_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// TestFramesReachTheSocket sends the stack's traffic from the peer kernel
// (ARP for StackAddr, and a UDP datagram to it) and reads both off the RX
// ring of an AF_XDP socket registered with the program.
func TestFramesReachTheSocket(t *testing.T) {
	for _, m := range modes {
		t.Run(m.steer.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: m.lab})
			p := attach(t, l, m.steer)
			var umem *xdp.Umem
			var sock *xdp.Socket
			require.NoError(t, l.Local.Do(func() (err error) {
				if umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 256}); err != nil {
					return err
				}
				sock, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex})
				return err
			}))
			t.Cleanup(func() { sock.Close(); umem.Close() })
			require.NoError(t, p.Register(0, sock.FD()))

			// ARP: the peer asks for StackAddr (no one answers yet).
			go l.Peer.Command(t.Context(), "ping", "-c", "1", "-W", "1", l.StackAddr.String()).Run()
			arp := receive(t, sock, func(f []byte) bool {
				return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806
			})
			tpa := l.StackAddr.As4()
			assert.Equal(t, tpa[:], arp[38:42], "ARP target protocol address")

			// UDP: a static neighbour entry stands in for xdpnet's ARP reply.
			require.NoError(t, l.Peer.Do(func() error {
				return netlink.NeighSet(&netlink.Neigh{ // replaces the entry the ARP attempt left
					LinkIndex:    l.Peer.Ifindex,
					State:        netlink.NUD_PERMANENT,
					IP:           l.StackAddr.AsSlice(),
					HardwareAddr: l.Local.MAC,
				})
			}))
			payload := []byte("to the stack, not the kernel")
			require.NoError(t, l.Peer.Do(func() error {
				c, err := net.Dial("udp", netip.AddrPortFrom(l.StackAddr, 9999).String())
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write(payload)
				return err
			}))
			udp := receive(t, sock, func(f []byte) bool {
				return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == steer.ProtoUDP
			})
			dst := l.StackAddr.As4()
			assert.Equal(t, dst[:], udp[30:34], "IPv4 destination")
			assert.Equal(t, uint16(9999), binary.BigEndian.Uint16(udp[36:38]), "UDP destination port")
			assert.True(t, bytes.HasSuffix(udp, payload), "UDP payload")

			s, err := p.Stats()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, s.Redirected, uint64(2), "%+v", s)
		})
	}
}

// receive reads frames off sock's RX ring until want accepts one, and
// returns a copy of it; frames it skips go back to the fill ring. It fails
// the test after 5 seconds.
func receive(t *testing.T, sock *xdp.Socket, want func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		require.NoError(t, sock.Wait(100))
		idx, n := sock.RX.Peek(16)
		var found []byte
		for i := range n {
			d := sock.RX.At(idx + i)
			f := sock.Umem().Bytes(d.Addr, int(d.Len))
			if found == nil && want(f) {
				found = bytes.Clone(f)
			}
			base := sock.Frames.Base(d.Addr)
			sock.Frames.Move(base, xdp.OwnerFill, xdp.OwnerFree)
		}
		sock.RX.Release(n)
		sock.Refill(n)
		if found != nil {
			return found
		}
	}
	t.Fatal("no matching frame on the RX ring within 5s")
	return nil
}
