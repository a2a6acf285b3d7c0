package steer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }

var modes = []struct {
	lab   lab.Mode
	steer steer.Mode
	nl    uint32 // IFLA_XDP_ATTACHED value netlink reports
}{
	{lab.Native, steer.Native, nl.XDP_ATTACHED_DRV},
	{lab.Generic, steer.Generic, nl.XDP_ATTACHED_SKB},
}

// attach attaches the steering program for l.StackAddr on Local's link and
// closes it when the test ends.
func attach(t *testing.T, l *lab.Lab, mode steer.Mode) *steer.Program {
	t.Helper()
	var p *steer.Program
	require.NoError(t, l.Local.Do(func() (err error) {
		p, err = steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Addrs: []netip.Addr{l.StackAddr}, Mode: mode})
		return err
	}))
	t.Cleanup(func() { p.Close() })
	return p
}

// xdpState is what netlink says is attached to h's link (nil: nothing).
func xdpState(t *testing.T, h *lab.Host) *netlink.LinkXdp {
	t.Helper()
	var x *netlink.LinkXdp
	require.NoError(t, h.Do(func() error {
		link, err := netlink.LinkByIndex(h.Ifindex)
		if err != nil {
			return err
		}
		if x = link.Attrs().Xdp; x != nil && !x.Attached {
			x = nil
		}
		return nil
	}))
	return x
}

func TestAttachAndClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.steer.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: m.lab})
			p := attach(t, l, m.steer)
			assert.Equal(t, m.steer, p.Mode())
			x := xdpState(t, l.Local)
			require.NotNil(t, x, "no XDP program on %s after Attach", l.Local.Link)
			assert.Equal(t, m.nl, x.AttachMode)
			assert.Nil(t, xdpState(t, l.Peer), "the peer end stays untouched")

			require.NoError(t, p.Close())
			assert.Nil(t, xdpState(t, l.Local), "program still attached after Close")
			assert.NoError(t, p.Close(), "Close is idempotent")
		})
	}
}

func TestAutoPicksNativeOnVeth(t *testing.T) {
	l := lab.New(t, lab.Config{})
	p := attach(t, l, steer.Auto)
	assert.Equal(t, steer.Native, p.Mode())
	assert.Equal(t, uint32(nl.XDP_ATTACHED_DRV), xdpState(t, l.Local).AttachMode)
}

// TestAutoFallsBackToGeneric uses a jumbo MTU, which native XDP on veth
// refuses for a single-buffer program (ERANGE): Auto must attach generic.
func TestAutoFallsBackToGeneric(t *testing.T) {
	l := lab.New(t, lab.Config{MTU: 9000})
	err := l.Local.Do(func() error {
		_, err := steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Mode: steer.Native})
		return err
	})
	require.ErrorIs(t, err, syscall.ERANGE)
	assert.ErrorContains(t, err, "MTU too large")
	assert.Nil(t, xdpState(t, l.Local), "a failed Attach leaves nothing behind")

	p := attach(t, l, steer.Auto)
	assert.Equal(t, steer.Generic, p.Mode())
	assert.Equal(t, uint32(nl.XDP_ATTACHED_SKB), xdpState(t, l.Local).AttachMode)
}

func TestSecondAttachIsRefused(t *testing.T) {
	for _, m := range modes {
		t.Run(m.steer.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: m.lab})
			attach(t, l, m.steer)
			id := xdpState(t, l.Local).ProgId
			for _, replace := range []bool{false, true} {
				err := l.Local.Do(func() error {
					p, err := steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Mode: m.steer, Replace: replace})
					if err == nil {
						p.Close()
					}
					return err
				})
				require.ErrorIs(t, err, steer.ErrForeignProgram, "replace=%v", replace)
				assert.ErrorContains(t, err, l.Local.Link)
				assert.ErrorContains(t, err, strconv.Itoa(int(id)))
				// Replace or not, the bpf_link is this process's own: say
				// who holds it, and that Replace cannot take it over.
				var held *steer.LinkHeldError
				require.ErrorAs(t, err, &held, "replace=%v", replace)
				require.Len(t, held.Holders, 1)
				assert.Equal(t, os.Getpid(), held.Holders[0].PID)
				assert.ErrorContains(t, err, "-replace cannot take over a bpf_link")
			}
			assert.Equal(t, id, xdpState(t, l.Local).ProgId, "the first program is still in place")
		})
	}
}

// TestReplaceNetlinkProgram attaches a stand-in foreign program the old way
// (netlink, like `ip link set dev X xdp obj ...`): Attach must refuse it
// unless Replace, and then take its place.
func TestReplaceNetlinkProgram(t *testing.T) {
	for _, m := range modes {
		t.Run(m.steer.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: m.lab})
			foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{
				Name:         "foreign",
				Type:         ebpf.XDP,
				License:      "MIT",
				Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
			})
			require.NoError(t, err)
			defer foreign.Close()
			flags := unix.XDP_FLAGS_DRV_MODE
			if m.steer == steer.Generic {
				flags = unix.XDP_FLAGS_SKB_MODE
			}
			require.NoError(t, l.Local.Do(func() error {
				link, err := netlink.LinkByIndex(l.Local.Ifindex)
				if err != nil {
					return err
				}
				return netlink.LinkSetXdpFdWithFlags(link, foreign.FD(), flags)
			}))
			foreignInfo, err := foreign.Info()
			require.NoError(t, err)
			foreignID, _ := foreignInfo.ID()

			err = l.Local.Do(func() error {
				_, err := steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Mode: m.steer})
				return err
			})
			require.ErrorIs(t, err, steer.ErrForeignProgram)
			assert.Equal(t, uint32(foreignID), xdpState(t, l.Local).ProgId, "refusal left the foreign program in place")

			var p *steer.Program
			require.NoError(t, l.Local.Do(func() (err error) {
				p, err = steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Mode: m.steer, Replace: true})
				return err
			}))
			defer p.Close()
			x := xdpState(t, l.Local)
			require.NotNil(t, x)
			assert.NotEqual(t, uint32(foreignID), x.ProgId, "ours replaced the foreign program")
			require.NoError(t, p.Close())
			assert.Nil(t, xdpState(t, l.Local))
		})
	}
}

// helperEnv marks a re-executed test binary as the child of
// TestDetachOnSignal; its value is "netns,ifindex,mode".
const helperEnv = "XDPNET_STEER_HELPER"

// TestDetachOnSignal runs a child process that attaches the program and
// then dies of a signal: the kernel must detach the program with the
// child's last reference to its bpf_link, whatever the signal.
func TestDetachOnSignal(t *testing.T) {
	lab.RequireRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		for _, m := range modes {
			t.Run(fmt.Sprintf("%v/%v", sig, m.steer), func(t *testing.T) {
				l := lab.New(t, lab.Config{Mode: m.lab})
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$")
				child.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", helperEnv, l.Local.NS, l.Local.Ifindex, m.steer))
				child.Stderr = os.Stderr
				out, err := child.StdoutPipe()
				require.NoError(t, err)
				require.NoError(t, child.Start())
				line, err := bufio.NewReader(out).ReadString('\n')
				require.NoError(t, err, "child output")
				require.Equal(t, "attached\n", line)
				require.NotNil(t, xdpState(t, l.Local), "child reported attached, but the link has no program")

				require.NoError(t, child.Process.Signal(sig))
				err = child.Wait()
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "the child must die of the signal")
				ws := exit.Sys().(syscall.WaitStatus)
				assert.True(t, ws.Signaled(), "child exit: %v", err)
				assert.Equal(t, sig, ws.Signal())
				// The bpf_link is released when the dying process's files
				// are closed, before the parent can reap it.
				assert.Nil(t, xdpState(t, l.Local), "program survived the child's %v", sig)
			})
		}
	}
}

// TestHelperProcess is not a test: it is the child of TestDetachOnSignal.
// It attaches, says so, and waits to be killed (bounded: it exits by
// itself after a minute).
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper child only")
	}
	f := strings.Split(spec, ",")
	ifindex, _ := strconv.Atoi(f[1])
	mode, _ := strconv.Atoi(f[2])
	var p *steer.Program
	h := &lab.Host{NS: f[0]}
	require.NoError(t, h.Do(func() (err error) {
		p, err = steer.Attach(steer.Config{Ifindex: ifindex, Mode: steer.Mode(mode)})
		return err
	}))
	fmt.Println("attached")
	time.Sleep(time.Minute)
	runtime.KeepAlive(p) // an unreachable Program's link fd is closed by the GC
}

// TestKernelTrafficPassesWhileAttached proves that steering leaves the
// kernel's own traffic alone: a TCP connection between the two kernels
// works while the program steers StackAddr, and ARP for StackAddr is the
// only thing it claims (counted as NoSocket: no AF_XDP socket is there).
func TestKernelTrafficPassesWhileAttached(t *testing.T) {
	for _, m := range modes {
		t.Run(m.steer.String(), func(t *testing.T) {
			l := lab.New(t, lab.Config{Mode: m.lab})
			p := attach(t, l, m.steer)

			var ln net.Listener
			require.NoError(t, l.Local.Do(func() (err error) {
				ln, err = net.Listen("tcp", netip.AddrPortFrom(l.Local.Addr.Addr(), 0).String())
				return err
			}))
			defer ln.Close()
			go func() { // echo one connection
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.Copy(c, c)
			}()
			var c net.Conn
			require.NoError(t, l.Peer.Do(func() (err error) {
				c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
				return err
			}))
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
			msg := []byte(strings.Repeat("xdpnet steering passes kernel traffic. ", 1000))
			go c.Write(msg)
			got := make([]byte, len(msg))
			_, err := io.ReadFull(c, got)
			require.NoError(t, err)
			assert.Equal(t, msg, got)

			s, err := p.Stats()
			require.NoError(t, err)
			assert.Zero(t, s.Redirected+s.NoSocket, "kernel traffic claimed: %+v", s)
			assert.NotZero(t, s.Passed)

			// Nobody answers for StackAddr (no socket), so ping fails, but
			// its ARP requests reach the program's "ours" path.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l.Peer.Command(ctx, "ping", "-c", "1", "-W", "1", l.StackAddr.String()).Run()
			s, err = p.Stats()
			require.NoError(t, err)
			assert.NotZero(t, s.NoSocket, "ARP for StackAddr not seen as ours: %+v", s)
			assert.Zero(t, s.Redirected)
		})
	}
}
