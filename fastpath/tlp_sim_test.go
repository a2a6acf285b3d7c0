package fastpath_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// endsWrite reports whether an Ethernet frame carries an IPv4 TCP segment
// with data and PSH: the last segment of what the app wrote.
func endsWrite(f []byte) bool {
	const eth, pshFlag = 14, 0x08
	if len(f) < eth+20 || f[eth]>>4 != 4 || f[eth+9] != 6 {
		return false
	}
	ip := f[eth:]
	ihl, total := int(ip[0]&0xf)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) || total < ihl+20 {
		return false
	}
	seg := ip[ihl:total]
	return len(seg) > int(seg[12]>>4)*4 && seg[13]&pshFlag != 0
}

// tailLossExchange runs one request and its response over a path of rtt,
// the response's last segment dropped once on its way, and returns the
// virtual time from the request's write to the response's last byte read,
// the server's counters and its SRTT when it had sent the response.
func tailLossExchange(t *testing.T, rtt time.Duration, noTLP bool) (time.Duration, tcp.ConnStats, time.Duration) {
	t.Helper()
	const reqLen, respLen = 100, 5000 // the response: four segments of 1448
	dropped := false
	up := nic.FaultConfig{Seed: 1, Delay: rtt / 2}
	down := nic.FaultConfig{Delay: rtt / 2, Drop: func(f []byte) bool {
		if !dropped && endsWrite(f) {
			dropped = true
			return true
		}
		return false
	}}
	s := newSimPath(t, up, down, tcp.Config{MSL: simMSL, NoTLP: noTLP})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	client, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	var (
		server      *tcp.Conn
		start       = time.Duration(-1)
		srtt        time.Duration
		got, served int
		buf         = make([]byte, 8192)
	)
	s.run(t, 10*time.Second, func() bool {
		if server == nil {
			server, _ = ln.Accept()
		}
		if start < 0 && client.State() == tcp.Established {
			_, err := client.Write(make([]byte, reqLen))
			require.NoError(t, err)
			start = s.now
		}
		if server != nil && served < reqLen {
			n, _ := server.Read(buf)
			if served += n; served == reqLen {
				_, err := server.Write(make([]byte, respLen))
				require.NoError(t, err)
				srtt, _ = server.SRTT()
			}
		}
		n, _ := client.Read(buf)
		got += n
		return got == respLen
	})
	require.True(t, dropped, "the response's last segment was not dropped")
	return s.now - start, server.Stats(), srtt
}

// TestTCPTailLossProbeSim: a request and a four-segment response over a
// 10 ms round trip, the response's last segment lost. With the tail loss
// probe (RFC 8985 7) the exchange takes its round trip, then the PTO
// after the ACK of the first three segments (2*SRTT + max(40 ms, SRTT)
// with one segment out), then half a round trip for the probe: about 2
// RTT + PTO. Without it the RTO (its 200 ms floor) runs from that ACK.
func TestTCPTailLossProbeSim(t *testing.T) {
	const rtt = 10 * time.Millisecond
	const slack = time.Millisecond // the simulation's poll steps
	withTLP, st, srtt := tailLossExchange(t, rtt, false)
	pto := 2*srtt + max(40*time.Millisecond, srtt)
	t.Logf("with TLP: %v (SRTT %v, PTO %v); server %+v", withTLP, srtt, pto, st)
	assert.InDelta(t, float64(2*rtt+pto), float64(withTLP), float64(slack), "with TLP: 2 RTT + PTO")
	assert.Equal(t, uint64(1), st.TLPProbes)
	assert.Equal(t, uint64(1), st.Retransmits)
	assert.Zero(t, st.Timeouts)

	withoutTLP, st, _ := tailLossExchange(t, rtt, true)
	t.Logf("without TLP: %v; server %+v", withoutTLP, st)
	assert.InDelta(t, float64(2*rtt+tcp.DefaultMinRTO), float64(withoutTLP), float64(slack), "without TLP: 2 RTT + RTO")
	assert.Zero(t, st.TLPProbes)
	assert.Equal(t, uint64(1), st.Timeouts)
}
