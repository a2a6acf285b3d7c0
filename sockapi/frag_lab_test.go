package sockapi_test

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

var (
	pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received.*, ([\d.]+)% packet loss`)
	pingReply   = regexp.MustCompile(`icmp_seq=(\d+)`)
	pingRTT     = regexp.MustCompile(`rtt .*`)
)

// TestFragmentedPingFromKernel: the kernel's ping with 3,000 and 8,000
// bytes of data (its requests go in fragments) gets every reply whole from
// xdpnet, in fragments, as from the kernel on the other end of the same
// link, which answers beside it.
func TestFragmentedPingFromKernel(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	for _, size := range []int{3000, 8000} {
		for _, to := range []struct {
			name string
			addr netip.Addr
		}{{"xdpnet", l.StackAddr}, {"kernel", l.Local.Addr.Addr()}} {
			out := l.Peer.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", fmt.Sprint(size), to.addr.String())
			m := pingSummary.FindStringSubmatch(out)
			require.NotNil(t, m, out)
			var replied []string
			for _, r := range pingReply.FindAllStringSubmatch(out, -1) {
				replied = append(replied, r[1])
			}
			assert.Equal(t, []string{"3", "3", "0"}, m[1:], "%s, %d bytes: sent, received, loss %%; replies to icmp_seq %v of 1-3\n%s",
				to.name, size, replied, out)
			// ping prints the ICMP length, header included, and
			// "(truncated)" for a short reply.
			assert.Contains(t, out, fmt.Sprintf("%d bytes from %v", size+8, to.addr), "%s, %d bytes", to.name, size)
			assert.NotContains(t, out, "truncated", "%s, %d bytes", to.name, size)
			assert.NotContains(t, out, "wrong data", "%s, %d bytes", to.name, size)
			t.Logf("%s, %d bytes: %s", to.name, size, pingRTT.FindString(out))
		}
	}
	st := s.Counters()
	// 3 replies in 3 fragments (3,028 bytes), 3 in 6 (8,028 bytes).
	assert.EqualValues(t, 6, st.ICMP.OutEchoReps)
	assert.EqualValues(t, 6, st.IP.FragOKs)
	assert.EqualValues(t, 3*3+3*6, st.IP.FragCreates)
}

// TestFragmentedUDPWithKernel: an xdpnet UDP socket sends a kernel socket
// datagrams of 8,000 and 65,507 bytes (the largest), which the kernel
// reassembles from xdpnet's fragments and receives intact; the kernel
// sends them back in its own fragments, and xdpnet receives them intact.
func TestFragmentedUDPWithKernel(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	var k *net.UDPConn
	require.NoError(t, l.Peer.Do(func() (err error) {
		k, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.Peer.Addr.Addr(), 0)))
		return err
	}))
	defer k.Close()
	c, err := s.ListenPacket("udp", ":0")
	require.NoError(t, err)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	require.NoError(t, k.SetDeadline(deadline))
	require.NoError(t, c.SetDeadline(deadline))
	buf := make([]byte, 70000)
	for _, size := range []int{8000, 65507} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*31 + i>>9)
		}
		_, err := c.WriteTo(msg, k.LocalAddr())
		require.NoError(t, err, "%d bytes", size)
		n, from, err := k.ReadFromUDP(buf)
		require.NoError(t, err, "the kernel receives %d bytes", size)
		require.Equal(t, msg, buf[:n], "%d bytes intact at the kernel", size)

		_, err = k.WriteToUDP(msg, from)
		require.NoError(t, err)
		n, _, err = c.ReadFrom(buf)
		require.NoError(t, err, "xdpnet receives %d bytes", size)
		require.Equal(t, msg, buf[:n], "%d bytes intact at xdpnet", size)
	}
	st := s.Counters().IP
	assert.EqualValues(t, 2, st.FragOKs)
	assert.EqualValues(t, 6+45, st.FragCreates, "1,480 data bytes a fragment")
	assert.EqualValues(t, 2, st.ReasmOKs, "the kernel's fragments reassembled")
}
