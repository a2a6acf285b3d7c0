package metrics_test

import (
	"flag"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/metrics"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

var (
	addrA = netip.MustParseAddr("198.18.0.2")
	addrB = netip.MustParseAddr("198.18.0.3")
)

// pipeStacks are two stacks joined by an in-memory pipe, as sockapi's
// tests build them.
func pipeStacks(t *testing.T) (a, b *sockapi.Stack) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	var err error
	a, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24)}, la)
	require.NoError(t, err)
	b, err = sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24)}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})
	return a, b
}

// TestCollectorExchange: after one TCP connection and five UDP
// datagrams from a to b over the pipe, each side's registry shows them
// with the exact values, as counters and gauges of the right names, and
// the collector passes Prometheus's lint.
func TestCollectorExchange(t *testing.T) {
	a, b := pipeStacks(t)
	ca, cb := metrics.New(a), metrics.New(b)
	ra, rb := prometheus.NewRegistry(), prometheus.NewRegistry()
	ra.MustRegister(ca)
	rb.MustRegister(cb)

	ln, err := b.Listen("tcp", ":80")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := a.Dial("tcp", "198.18.0.3:80")
	require.NoError(t, err)
	defer c.Close()
	s := <-accepted
	require.NotNil(t, s)
	defer s.Close()
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)

	const datagrams = 5
	pc, err := b.ListenPacket("udp", ":5300")
	require.NoError(t, err)
	defer pc.Close()
	uc, err := a.Dial("udp", "198.18.0.3:5300")
	require.NoError(t, err)
	defer uc.Close()
	for range datagrams {
		_, err := uc.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	for range datagrams {
		_, _, err := pc.ReadFrom(buf)
		require.NoError(t, err)
	}

	assert.NoError(t, testutil.GatherAndCompare(ra, strings.NewReader(`
# HELP xdpnet_tcp_active_opens_total TCP connections dialled (nstat TcpActiveOpens).
# TYPE xdpnet_tcp_active_opens_total counter
xdpnet_tcp_active_opens_total 1
# HELP xdpnet_tcp_curr_estab TCP connections in ESTABLISHED or CLOSE-WAIT now (nstat TcpCurrEstab).
# TYPE xdpnet_tcp_curr_estab gauge
xdpnet_tcp_curr_estab 1
# HELP xdpnet_udp_out_datagrams_total UDP datagrams sent (nstat UdpOutDatagrams).
# TYPE xdpnet_udp_out_datagrams_total counter
xdpnet_udp_out_datagrams_total 5
`), "xdpnet_tcp_active_opens_total", "xdpnet_tcp_curr_estab", "xdpnet_udp_out_datagrams_total"))
	assert.NoError(t, testutil.GatherAndCompare(rb, strings.NewReader(`
# HELP xdpnet_tcp_passive_opens_total TCP connections started by a listener (nstat TcpPassiveOpens).
# TYPE xdpnet_tcp_passive_opens_total counter
xdpnet_tcp_passive_opens_total 1
# HELP xdpnet_udp_in_datagrams_total UDP datagrams queued to a socket (nstat UdpInDatagrams).
# TYPE xdpnet_udp_in_datagrams_total counter
xdpnet_udp_in_datagrams_total 5
# HELP xdpnet_icmpmsg_in_type_total Valid ICMP messages received, by type (nstat IcmpMsgInType).
# TYPE xdpnet_icmpmsg_in_type_total counter
`), "xdpnet_tcp_passive_opens_total", "xdpnet_udp_in_datagrams_total", "xdpnet_icmpmsg_in_type_total"))

	// The queue's figures carry its label: b's link received what a's
	// sent, one queue each.
	sent := b.Counters().Queues[0].Link.RxFrames
	require.Positive(t, sent)
	assert.Equal(t, float64(sent), gathered(t, rb, "xdpnet_link_rx_frames_total", "queue", "0"))

	problems, err := testutil.CollectAndLint(ca)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// gathered is the value of the sample of metric name whose label has
// the value given.
func gathered(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if m.Counter != nil {
						return m.Counter.GetValue()
					}
					return m.Gauge.GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// TestMetricNamesStable: every metric's name, kind and help, as
// Describe gives them, are those of testdata/metrics.golden (go test
// -update rewrites it): a renamed metric breaks dashboards, so it shows
// in review.
func TestMetricNamesStable(t *testing.T) {
	a, _ := pipeStacks(t)
	ch := make(chan *prometheus.Desc)
	go func() {
		metrics.New(a).Describe(ch)
		close(ch)
	}()
	var lines []string
	for d := range ch {
		lines = append(lines, d.String())
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	const golden = "testdata/metrics.golden"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

// TestName: nstat names in Prometheus's words, acronyms kept whole.
func TestName(t *testing.T) {
	for nstat, want := range map[string]string{
		"TcpActiveOpens":             "xdpnet_tcp_active_opens",
		"TcpExtTCPSackRecovery":      "xdpnet_tcpext_tcp_sack_recovery",
		"TcpExtTCPOFODrop":           "xdpnet_tcpext_tcp_ofo_drop",
		"TcpExtTCPRcvQDrop":          "xdpnet_tcpext_tcp_rcv_q_drop",
		"TcpExtTCPACKSkippedSynRecv": "xdpnet_tcpext_tcp_ack_skipped_syn_recv",
		"TcpExtPAWSEstab":            "xdpnet_tcpext_paws_estab",
		"IpReasmOKs":                 "xdpnet_ip_reasm_oks",
		"IpExtInCsumErrors":          "xdpnet_ipext_in_csum_errors",
		"XdpnetTcpDSACKsSent":        "xdpnet_tcp_dsacks_sent",
		"XdpnetPollerRxBroadcastTCP": "xdpnet_poller_rx_broadcast_tcp",
		"XdpnetLinkRxBytes":          "xdpnet_link_rx_bytes",
		"UdpRcvbufErrors":            "xdpnet_udp_rcvbuf_errors",
	} {
		assert.Equal(t, want, metrics.Name(nstat), nstat)
	}
}
