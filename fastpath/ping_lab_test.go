package fastpath_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestPingFromKernel: the kernel's ping gets every echo answered, with
// ping's own check of the payload (it prints "wrong data byte" otherwise),
// at the smallest and the largest payload that fits the MTU, in both XDP
// modes; and the kernel's neighbour table learns the stack's MAC.
func TestPingFromKernel(t *testing.T) {
	for _, mode := range lab.Modes {
		t.Run(mode.String(), func(t *testing.T) {
			attach, err := steer.ParseMode(mode.String())
			require.NoError(t, err)
			l := lab.New(t, lab.Config{Mode: mode})
			s := startStack(t, l, attach, nil, nil)
			for _, size := range []int{56, 0, 1472} {
				out := l.Peer.Run(t, "ping", "-c", "100", "-i", "0.01", "-W", "1", "-s", fmt.Sprint(size), l.StackAddr.String())
				m := pingSummary.FindStringSubmatch(out)
				require.NotNil(t, m, out)
				assert.Equal(t, "100", m[2], "replies at payload %d:\n%s", size, out)
				assert.NotContains(t, out, "wrong data", "payload %d", size)
				assert.NotContains(t, out, "DUP!", "payload %d", size)
			}
			s.stop()
			st := s.IP().Stats()
			assert.EqualValues(t, 300, st.ICMP.InEchos)
			assert.EqualValues(t, 300, st.ICMP.OutEchoReps)
			neigh := l.Peer.Run(t, "ip", "neigh", "show", l.StackAddr.String())
			assert.Contains(t, neigh, l.Local.MAC.String(), "the kernel learned the stack's MAC by ARP")
		})
	}
}
