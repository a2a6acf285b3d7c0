// Package metrics exports a stack's counters to Prometheus: a
// prometheus.Collector over sockapi's Stack.Counters that a service
// registers with its own registry.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.New(stack))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Each counter keeps its nstat name (sockapi.Counter), written in
// Prometheus's words: xdpnet_, then its nstat group (ip, icmp, icmpmsg,
// tcp, udp, tcpext, ipext; xdpnet's own groups tcp, arp, link, ring,
// poller), then the name in snake case, and _total for a counter:
// TcpActiveOpens is xdpnet_tcp_active_opens_total, TcpExtTCPSackRecovery
// xdpnet_tcpext_tcp_sack_recovery_total. Levels are gauges, without
// _total: xdpnet_tcp_curr_estab, xdpnet_arp_entries,
// xdpnet_arp_queued_bytes. A queue's own figures (its link's, its AF_XDP
// rings' XDP_STATISTICS and its poller's) carry a queue label, ICMP's by
// type a type label. The package is apart from sockapi so that only
// services that want Prometheus import it.
package metrics

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xdpnet/xdpnet/sockapi"
)

// Collector collects a stack's counters: one Stack.Counters snapshot per
// Collect, so the figures of one scrape are of one moment for each
// queue.
type Collector struct {
	stack *sockapi.Stack
	descs map[string]metric // by nstat name; IcmpMsg's by its prefix
}

// metric is one nstat name's Prometheus description and kind.
type metric struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

// gauges are the counters that are levels, not counts.
var gauges = map[string]bool{"TcpCurrEstab": true, "XdpnetArpEntries": true, "XdpnetArpQueuedBytes": true}

// icmpMsg are the nstat prefixes of ICMP's counters by type; the type
// follows in the name (IcmpMsgInType8).
var icmpMsg = []string{"IcmpMsgInType", "IcmpMsgOutType"}

// New returns a Collector of s's counters.
func New(s *sockapi.Stack) *Collector {
	c := &Collector{stack: s, descs: map[string]metric{}}
	for _, n := range (sockapi.Counters{}).List() {
		c.add(n.Name, nil)
	}
	for _, n := range icmpMsg {
		c.add(n, []string{"type"})
	}
	for _, n := range (sockapi.QueueCounters{}).List() {
		c.add(n.Name, []string{"queue"})
	}
	return c
}

func (c *Collector) add(nstat string, labels []string) {
	h, ok := help[nstat]
	if !ok {
		// A counter added to sockapi without a description here: a
		// programming error TestEveryCounterExported catches.
		panic("metrics: no help for " + nstat)
	}
	m := metric{kind: prometheus.CounterValue}
	name := Name(nstat)
	if gauges[nstat] {
		m.kind = prometheus.GaugeValue
	} else {
		name += "_total"
	}
	m.desc = prometheus.NewDesc(name, fmt.Sprintf("%s (nstat %s).", h, nstat), labels, nil)
	c.descs[nstat] = m
}

// Describe sends the descriptions of every metric Collect sends.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.descs {
		ch <- m.desc
	}
}

// Collect sends the stack's counters of one snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	all := c.stack.Counters()
	queues := all.Queues
	all.Queues = nil // each queue's figures apart, by label, not summed
	for _, n := range all.List() {
		if m, ok := c.descs[n.Name]; ok {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(n.Value))
			continue
		}
		for _, p := range icmpMsg {
			if typ, ok := strings.CutPrefix(n.Name, p); ok {
				ch <- prometheus.MustNewConstMetric(c.descs[p].desc, prometheus.CounterValue, float64(n.Value), typ)
			}
		}
	}
	for q, qc := range queues {
		label := strconv.Itoa(q)
		for _, n := range qc.List() {
			m := c.descs[n.Name]
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(n.Value), label)
		}
	}
}

// groups are the nstat groups, longest first where one is a prefix of
// another, and their words in a metric name.
var groups = []struct{ nstat, prom string }{
	{"XdpnetTcp", "tcp"}, {"XdpnetArp", "arp"}, {"XdpnetLink", "link"}, {"XdpnetRing", "ring"}, {"XdpnetPoller", "poller"},
	{"IcmpMsg", "icmpmsg"}, {"Icmp", "icmp"}, {"IpExt", "ipext"}, {"Ip", "ip"},
	{"TcpExt", "tcpext"}, {"Tcp", "tcp"}, {"Udp", "udp"},
}

// acronyms are the words in capitals of nstat's names, longest first
// where one ends another; snake keeps each whole (TCPOFODrop is
// tcp_ofo_drop, not tcpofo_drop).
var acronyms = []string{"DSACK", "SACK", "ACK", "TCP", "OFO", "PAWS", "RST", "ICMP", "ARP", "CSS", "SYN", "OK"}

// Name is the metric name of the nstat name n, without _total:
// xdpnet_tcpext_tcp_sack_recovery for TcpExtTCPSackRecovery.
func Name(n string) string {
	for _, g := range groups {
		if rest, ok := strings.CutPrefix(n, g.nstat); ok {
			return "xdpnet_" + g.prom + "_" + snake(rest)
		}
	}
	return "xdpnet_" + snake(n)
}

// snake splits a CamelCase name into lower-case words joined by
// underscores: a known acronym (with a plural s) is one word, another
// run of capitals one word up to the capital that starts the next.
func snake(s string) string {
	var words []string
	for len(s) > 0 {
		n := wordLen(s)
		words = append(words, strings.ToLower(s[:n]))
		s = s[n:]
	}
	return strings.Join(words, "_")
}

// wordLen is the length of the word s starts with.
func wordLen(s string) int {
	up := func(i int) bool { return i < len(s) && unicode.IsUpper(rune(s[i])) }
	for _, a := range acronyms {
		if !strings.HasPrefix(s, a) {
			continue
		}
		n := len(a)
		if n < len(s) && s[n] == 's' && (n+1 == len(s) || up(n+1)) {
			n++ // DSACKsSent: dsacks_sent
		}
		if n == len(s) || up(n) {
			return n
		}
	}
	n := 1
	if up(0) && up(1) {
		// Capitals up to the one before a lower-case letter: RcvQDrop's Q.
		for up(n) && !(n+1 < len(s) && !up(n+1)) {
			n++
		}
		return n
	}
	for n < len(s) && !up(n) {
		n++
	}
	return n
}
