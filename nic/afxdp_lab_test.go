package nic_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/internal/testsupport/testframe"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// openLabDevice opens the lab's Local end for xdpnet, owning StackAddr, and
// gives the peer's kernel a static neighbour entry for it (the stack has no
// ARP at this layer).
func openLabDevice(t *testing.T, l *lab.Lab, mode steer.Mode, queues int) *nic.XDPDevice {
	t.Helper()
	return openLabDeviceWith(t, l, nic.XDPConfig{Queues: queues, Attach: mode})
}

// openLabDeviceWith is openLabDevice with cfg's queues, mode and socket
// shape.
func openLabDeviceWith(t *testing.T, l *lab.Lab, cfg nic.XDPConfig) *nic.XDPDevice {
	t.Helper()
	cfg.Interface, cfg.Addrs = l.Local.Link, []netip.Addr{l.StackAddr}
	var dev *nic.XDPDevice
	require.NoError(t, l.Local.Do(func() (err error) {
		dev, err = nic.OpenXDP(cfg)
		return err
	}))
	t.Cleanup(func() { dev.Close() })
	require.Equal(t, cfg.Attach, dev.Program().Mode())
	require.Len(t, dev.Links(), max(cfg.Queues, 1))
	require.NoError(t, l.Peer.Do(func() error {
		peer, err := netlink.LinkByName(l.Peer.Link)
		if err != nil {
			return err
		}
		return netlink.NeighAdd(&netlink.Neigh{
			LinkIndex: peer.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: l.StackAddr.AsSlice(), HardwareAddr: l.Local.MAC,
		})
	}))
	return dev
}

// payload is the deterministic content of datagram i: sizes sweep 1..1472.
func payload(i int) []byte {
	p := make([]byte, 1+(i*37)%1472)
	for j := range p {
		p[j] = byte(i + j*7)
	}
	return p
}

func TestXDPLinkLab(t *testing.T) {
	for _, mode := range lab.Modes {
		t.Run(mode.String(), func(t *testing.T) {
			attach, err := steer.ParseMode(mode.String())
			require.NoError(t, err)
			l := lab.New(t, lab.Config{Mode: mode})
			dev := openLabDevice(t, l, attach, 1)
			link := dev.Links()[0]
			t.Run("ReceivesWhatTheKernelSends", func(t *testing.T) { testReceive(t, l, link) })
			t.Run("TransmitsByteForByte", func(t *testing.T) { testTransmit(t, l, link, 32) })
			t.Run("KernelKeepsOtherTraffic", func(t *testing.T) { testKernelTraffic(t, l) })
			t.Run("CloseDetaches", func(t *testing.T) {
				// Frames the link never takes overflow its rings; the
				// kernel's counts of the drops outlive the socket.
				sendUDP(t, l, 20000)
				for deadline := time.Now().Add(5 * time.Second); link.Stats().RxDropped == 0; time.Sleep(time.Millisecond) {
					require.True(t, time.Now().Before(deadline), "the kernel counted no drop: %+v", link.RingStats())
				}
				before, ring := link.Stats(), link.RingStats()
				require.NoError(t, dev.Close())
				after := link.Stats()
				assert.GreaterOrEqual(t, after.RxDropped, before.RxDropped, "the drops outlive the socket")
				assert.GreaterOrEqual(t, link.RingStats().RxRingFull+link.RingStats().RxDropped, ring.RxRingFull+ring.RxDropped)
				assert.Equal(t, before.RxFrames, after.RxFrames)
				require.NoError(t, l.Local.Do(func() error {
					ll, err := netlink.LinkByName(l.Local.Link)
					if err != nil {
						return err
					}
					if x := ll.Attrs().Xdp; x != nil && x.Attached {
						return fmt.Errorf("XDP program %d still attached after Close", x.ProgId)
					}
					return nil
				}))
				_, err := link.Receive(make([]nic.Frame, 1))
				assert.ErrorIs(t, err, nic.ErrClosed)
			})
		})
	}
}

// TestXDPLinkTransmitsWhatTheKernelDefers sends 1000 frames on sockets
// where the kernel stops taking TX descriptors before the ring is empty,
// and the peer must see every one. With a completion ring of 64 slots, the
// kernel refuses a descriptor once 64 completions wait unreaped, while the
// free list, with 1,900 frames still on it, would not have Alloc reap for
// a long time: the frames stayed on the TX ring (the peer saw 64 of
// 1000), and on the stack's sockets the same state stalled a 16 KiB echo
// for seconds. With the kernel's budget of 32 frames a sendto and 64 a
// Transmit, each kick left half a batch behind (the kernel refuses
// budgets under 32).
func TestXDPLinkTransmitsWhatTheKernelDefers(t *testing.T) {
	for _, c := range []struct {
		name   string
		socket xdp.SocketConfig
		batch  int
	}{
		{"CompletionRingOf64", xdp.SocketConfig{CompletionSize: 64}, 32},
		{"BudgetOf32", xdp.SocketConfig{TxBudget: -1}, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: lab.Native})
			dev := openLabDeviceWith(t, l, nic.XDPConfig{Attach: steer.Native, Socket: c.socket})
			testTransmit(t, l, dev.Links()[0], c.batch)
		})
	}
}

// sendUDP has the peer's kernel send count datagrams of payload(i) to
// the stack's address.
func sendUDP(t *testing.T, l *lab.Lab, count int) {
	dst := netip.AddrPortFrom(l.StackAddr, 9999)
	require.NoError(t, l.Peer.Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range count {
			if _, err := c.Write(payload(i)); err != nil {
				return fmt.Errorf("datagram %d: %w", i, err)
			}
		}
		return nil
	}))
}

func testReceive(t *testing.T, l *lab.Lab, link *nic.XDPLink) {
	const count = 1000
	sendUDP(t, l, count)
	fs := make([]nic.Frame, 64)
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < count && time.Now().Before(deadline) {
		n, err := link.Receive(fs)
		require.NoError(t, err)
		for _, f := range fs[:n] {
			require.True(t, testframe.UDPChecksumOK(f.Data), "frame %d: UDP checksum incomplete or wrong (is tx offload off on the peer?)", got)
			require.Equal(t, []byte(l.Local.MAC), f.Data[:6], "frame %d: destination MAC", got)
			require.Equal(t, payload(got), f.Data[testframe.UDPFirst:], "frame %d: payload", got)
			got++
		}
		link.Release(fs[:n])
		if n == 0 {
			link.Socket().Wait(10)
		}
	}
	assert.Equal(t, count, got, "every datagram the kernel sent arrived, in order")
	st := link.Stats()
	assert.EqualValues(t, count, st.RxFrames)
	assert.Zero(t, st.RxDropped)
	assert.Zero(t, link.Socket().Frames.Violations)
}

// testTransmit sends 1000 frames, batch a Transmit, and checks that the
// peer saw each one, byte for byte.
func testTransmit(t *testing.T, l *lab.Lab, link *nic.XDPLink, batch int) {
	const count = 1000
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = testframe.UDP{
			SrcMAC: l.Local.MAC, DstMAC: l.Peer.MAC, ID: uint16(i),
			Src: netip.AddrPortFrom(l.StackAddr, 4000), Dst: netip.AddrPortFrom(l.Peer.Addr.Addr(), 9),
			Payload: payload(i),
		}.Build()
	}
	// A raw packet socket on the peer sees every frame exactly as it left
	// the wire, before the peer's kernel does anything with it.
	var fd int
	require.NoError(t, l.Peer.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.Peer.Ifindex})
	}))
	defer unix.Close(fd)
	require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20))
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}))

	buf := make([]nic.Frame, batch)
	before := link.Stats().TxFrames
	deadline := time.Now().Add(5 * time.Second)
	for sent := 0; sent < count; {
		require.True(t, time.Now().Before(deadline), "sent only %d frames", sent)
		n := link.Alloc(buf[:min(len(buf), count-sent)])
		for i := range n {
			buf[i].Data = buf[i].Data[:copy(buf[i].Data, frames[sent+i])]
		}
		m, err := link.Transmit(buf[:n])
		require.NoError(t, err)
		link.Release(buf[m:n])
		sent += m
	}
	assert.EqualValues(t, count, link.Stats().TxFrames-before)

	// Frames may arrive out of order: veth hands each to its peer through
	// the backlog of the CPU that sent it, and this goroutine may move
	// between CPUs from one Transmit to the next. Each frame's IPv4
	// identification is its index.
	rx := make([]byte, 2048)
	seen := make([]bool, count)
	for got := 0; got < count; {
		n, from, err := unix.Recvfrom(fd, rx, 0)
		require.NoError(t, err, "after %d of %d frames", got, count)
		if ll := from.(*unix.SockaddrLinklayer); ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the peer's own ICMP replies
		}
		require.GreaterOrEqual(t, n, testframe.UDPFirst, "a runt of %d bytes", n)
		i := int(binary.BigEndian.Uint16(rx[testframe.EthLen+4:]))
		require.Less(t, i, count, "a frame with identification %d", i)
		require.False(t, seen[i], "frame %d arrived twice", i)
		require.True(t, bytes.Equal(frames[i], rx[:n]), "frame %d differs:\nsent %x\ngot  %x", i, frames[i], rx[:n])
		seen[i] = true
		got++
	}
}

// testKernelTraffic proves the steering program passes what is not the
// stack's: a TCP connection between the two kernels works through it.
func testKernelTraffic(t *testing.T, l *lab.Lab) {
	var ln net.Listener
	require.NoError(t, l.Local.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(l.Local.Addr.Addr(), 0).String())
		return err
	}))
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	msg := bytes.Repeat([]byte("kernel traffic passes "), 1000)
	require.NoError(t, l.Peer.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return err
		}
		echo := make([]byte, len(msg))
		if _, err := io.ReadFull(c, echo); err != nil {
			return err
		}
		if !bytes.Equal(msg, echo) {
			return fmt.Errorf("echo differs")
		}
		return nil
	}))
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestXDPDeviceQueues opens both queues of a two-queue veth: flows the
// peer's kernel hashes onto different queues reach different sockets, and
// every datagram arrives exactly once.
func TestXDPDeviceQueues(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	dev := openLabDevice(t, l, steer.Native, 2)
	const flows, perFlow = 32, 20
	require.NoError(t, l.Peer.Do(func() error {
		for f := range flows {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.StackAddr, 9999)))
			if err != nil {
				return err
			}
			for i := range perFlow {
				if _, err := c.Write([]byte(fmt.Sprintf("flow %d datagram %d", f, i))); err != nil {
					return err
				}
			}
			c.Close()
		}
		return nil
	}))
	seen := map[string]int{}
	perQueue := make([]int, 2)
	fs := make([]nic.Frame, 64)
	for deadline := time.Now().Add(5 * time.Second); len(seen) < flows*perFlow && time.Now().Before(deadline); {
		for q, link := range dev.Links() {
			n, err := link.Receive(fs)
			require.NoError(t, err)
			for _, f := range fs[:n] {
				seen[string(f.Data[testframe.UDPFirst:])]++
				perQueue[q]++
			}
			link.Release(fs[:n])
		}
	}
	assert.Len(t, seen, flows*perFlow, "every datagram arrived")
	for k, n := range seen {
		require.Equal(t, 1, n, "%q arrived %d times", k, n)
	}
	for q, n := range perQueue {
		assert.NotZero(t, n, "queue %d received nothing: flows were not spread", q)
	}
	t.Logf("frames per queue: %v", perQueue)
}

// TestXDPLinkPark: a poller parked on the socket in the Go netpoller
// wakes when a datagram for the stack arrives.
func TestXDPLinkPark(t *testing.T) {
	l := lab.New(t, lab.Config{})
	link := openLabDevice(t, l, steer.Native, 1).Links()[0]
	require.NoError(t, link.Arm(time.Now().Add(10*time.Second)))
	sent := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		sent <- l.Peer.Do(func() error {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.StackAddr, 9999)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("wake up"))
			return err
		})
	}()
	start := time.Now()
	require.NoError(t, link.Park())
	assert.Less(t, time.Since(start), 5*time.Second, "woken by the frame, not the deadline")
	require.NoError(t, <-sent)
	fs := make([]nic.Frame, 8)
	n, err := link.Receive(fs)
	require.NoError(t, err)
	assert.Positive(t, n, "Park returned with a frame to receive")
	link.Release(fs[:n])
}
