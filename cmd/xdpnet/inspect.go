package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/admin"
)

// The subcommands that look inside a running stack, through its admin
// socket (sockapi/admin): sockets, counters, arp.

// target is the stack a subcommand attaches to: the one running, or
// the one -pid, -iface or -socket picks.
type target struct {
	pid    int
	iface  string
	socket string
	json   bool
}

func (t *target) flags(fs *flag.FlagSet) {
	fs.IntVar(&t.pid, "pid", 0, "the stack of this process (when several run)")
	fs.StringVar(&t.iface, "iface", "", "the stack on this interface (when several run)")
	fs.StringVar(&t.socket, "socket", "", "the stack of this admin socket (default: the one in "+sockapi.AdminDir()+")")
	fs.BoolVar(&t.json, "json", false, "print JSON, for scripts")
}

// check refuses -socket with -pid or -iface.
func (t *target) check(cmd string) error {
	if t.socket != "" && (t.pid != 0 || t.iface != "") {
		return usageError{fmt.Errorf("%s: -socket picks the stack alone: no -pid or -iface with it", cmd)}
	}
	if t.pid < 0 {
		return usageError{fmt.Errorf("%s: -pid %d: want a process ID", cmd, t.pid)}
	}
	return nil
}

// attach connects to the stack's admin socket and asks who it is.
func (t *target) attach() (*admin.Client, sockapi.AdminInfo, error) {
	path := t.socket
	if path == "" {
		ep, err := admin.Pick(t.pid, t.iface)
		if errors.Is(err, admin.ErrSeveral) {
			return nil, sockapi.AdminInfo{}, fmt.Errorf("%w; pick one with -pid, -iface or -socket", err)
		}
		if err != nil {
			return nil, sockapi.AdminInfo{}, err
		}
		path = ep.Path
	}
	cl, err := admin.Dial(path)
	if err != nil {
		return nil, sockapi.AdminInfo{}, err
	}
	info, err := cl.Info()
	if err != nil {
		cl.Close()
		return nil, info, err
	}
	return cl, info, nil
}

// socketsConfig is what `xdpnet sockets` was asked to show.
type socketsConfig struct {
	target
	listening, tcp, udp, info bool
	states                    []sockapi.TCPState // none: all
	port                      int                // 0: any
}

func parseSockets(args []string) (socketsConfig, error) {
	fs := newFlagSet("sockets")
	var c socketsConfig
	var states string
	c.flags(fs)
	fs.BoolVar(&c.listening, "l", false, "listening sockets only: TCP listeners and unconnected UDP sockets")
	fs.BoolVar(&c.tcp, "t", false, "TCP sockets (default: TCP and UDP)")
	fs.BoolVar(&c.udp, "u", false, "UDP sockets (default: TCP and UDP)")
	fs.BoolVar(&c.info, "i", false, "TCP details under each connection, as `ss -ti`")
	fs.StringVar(&states, "state", "", "only these states, comma-separated, netstat's or ss's names: ESTABLISHED,time-wait")
	fs.IntVar(&c.port, "port", 0, "only sockets with this local or foreign port")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if err := c.check("sockets"); err != nil {
		return c, err
	}
	if c.port < 0 || c.port > 65535 {
		return c, usageError{fmt.Errorf("sockets: -port %d: want 1 to 65535", c.port)}
	}
	for _, s := range strings.Split(states, ",") {
		if s == "" {
			continue
		}
		st, ok := parseState(s)
		if !ok {
			return c, usageError{fmt.Errorf("sockets: -state %q: want a TCP state like ESTABLISHED, LISTEN, TIME_WAIT or close-wait", s)}
		}
		c.states = append(c.states, st)
	}
	return c, nil
}

// parseState reads a state by netstat's name (FIN_WAIT2) or ss's
// (fin-wait-2), in any case.
func parseState(s string) (sockapi.TCPState, bool) {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "").Replace(strings.ToUpper(s))
	}
	if norm(s) == "ESTAB" {
		return sockapi.TCPEstablished, true
	}
	for st := sockapi.TCPEstablished; st <= sockapi.TCPClosing; st++ {
		if norm(st.String()) == norm(s) {
			return st, true
		}
	}
	return 0, false
}

// keep reports whether socket s passes c's filters.
func (c socketsConfig) keep(s sockapi.Socket) bool {
	switch {
	case c.tcp != c.udp && (s.Proto == "tcp") != c.tcp:
		return false
	case c.listening && s.State != sockapi.TCPListen && !(s.Proto == "udp" && !s.Remote.IsValid()):
		return false
	case len(c.states) > 0 && !slices.Contains(c.states, s.State):
		return false
	case c.port != 0 && int(s.Local.Port()) != c.port && int(s.Remote.Port()) != c.port:
		return false
	}
	return true
}

// sockets runs `xdpnet sockets`.
func sockets(args []string, stdout io.Writer) error {
	c, err := parseSockets(args)
	if err != nil {
		return err
	}
	cl, info, err := c.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	all, err := cl.Sockets()
	if err != nil {
		return err
	}
	var socks []sockapi.Socket
	for _, s := range all {
		if c.keep(s) {
			socks = append(socks, s)
		}
	}
	slices.SortStableFunc(socks, func(a, b sockapi.Socket) int {
		if n := strings.Compare(a.Proto, b.Proto); n != 0 {
			return n
		}
		if n := a.Local.Compare(b.Local); n != 0 {
			return n
		}
		if n := a.Remote.Compare(b.Remote); n != 0 {
			return n
		}
		return a.Queue - b.Queue
	})
	if c.json {
		type line struct {
			sockapi.Socket
			PID int `json:"pid"`
		}
		lines := make([]line, len(socks))
		for i, s := range socks {
			lines[i] = line{s, info.PID}
		}
		return printJSON(stdout, lines)
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "Proto\tLocal Address\tForeign Address\tState\tPID\tRecv-Q\tSend-Q\tQueue")
	for _, s := range socks {
		remote := "0.0.0.0:*"
		if s.Remote.IsValid() {
			remote = s.Remote.String()
		}
		state := s.State.String()
		if s.Proto == "udp" && !s.Remote.IsValid() {
			state = "" // as netstat: an unconnected UDP socket has no state
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", s.Proto, s.Local, remote, state, info.PID, s.RecvQ, s.SendQ, s.Queue)
		if c.info && s.TCP != nil {
			fmt.Fprintf(w, "\t%s\n", tcpDetails(s.TCP))
		}
	}
	return w.Flush()
}

// tcpDetails is a connection's line of `ss -ti`: times in
// milliseconds, windows in segments.
func tcpDetails(i *sockapi.TCPInfo) string {
	ms := func(d time.Duration) string { // to the microsecond, as ss
		return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64), "0"), ".")
	}
	mss := max(i.SndMSS, 1)
	f := []string{
		"rtt:" + ms(i.RTT) + "/" + ms(i.RTTVar),
		"rto:" + ms(i.RTO),
		"mss:" + strconv.Itoa(int(i.SndMSS)),
		"cwnd:" + strconv.Itoa(int(i.Cwnd/mss)),
	}
	if i.Ssthresh != 1<<32-1 {
		f = append(f, "ssthresh:"+strconv.Itoa(int(i.Ssthresh/mss)))
	}
	f = append(f,
		"bytes_sent:"+strconv.FormatUint(i.BytesSent, 10),
		"bytes_retrans:"+strconv.FormatUint(i.BytesRetrans, 10),
		"bytes_acked:"+strconv.FormatUint(i.BytesAcked, 10),
		"bytes_received:"+strconv.FormatUint(i.BytesReceived, 10),
		"segs_out:"+strconv.FormatUint(i.SegsOut, 10),
		"segs_in:"+strconv.FormatUint(i.SegsIn, 10),
		"retrans:"+strconv.FormatUint(i.Retransmits, 10),
		"lost:"+strconv.FormatUint(i.Lost, 10),
		"delivery_rate:"+bps(i.DeliveryRate),
	)
	if i.DeliveryRateAppLimited {
		f = append(f, "app_limited")
	}
	if i.Timer != "" {
		f = append(f, "timer:("+i.Timer+","+i.TimerIn.Round(time.Millisecond).String()+")")
	}
	return strings.Join(f, " ")
}

// bps prints a rate in bytes per second as ss does, in bits per second.
func bps(bytesPerSec uint64) string {
	b := float64(bytesPerSec) * 8
	switch {
	case b >= 1e9:
		return strconv.FormatFloat(b/1e9, 'f', 1, 64) + "Gbps"
	case b >= 1e6:
		return strconv.FormatFloat(b/1e6, 'f', 1, 64) + "Mbps"
	case b >= 1e3:
		return strconv.FormatFloat(b/1e3, 'f', 1, 64) + "Kbps"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + "bps"
}

// countersConfig is what `xdpnet counters` was asked to show.
type countersConfig struct {
	target
	all      bool
	interval time.Duration // 0: one snapshot
	count    int           // reports with -d; 0: until interrupted
}

func parseCounters(args []string) (countersConfig, error) {
	fs := newFlagSet("counters")
	var c countersConfig
	var secs float64
	c.flags(fs)
	fs.BoolVar(&c.all, "a", false, "all counters, zeros included (default: those not zero)")
	fs.Float64Var(&secs, "d", 0, "every this many seconds, print what changed since the last report, until interrupted")
	fs.IntVar(&c.count, "n", 0, "with -d: stop after this many reports")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if err := c.check("counters"); err != nil {
		return c, err
	}
	if secs < 0 || secs > 0 && secs < 0.01 || secs > 86400 {
		return c, usageError{fmt.Errorf("counters: -d %v: want 0.01 to 86400 seconds", secs)}
	}
	c.interval = time.Duration(secs * float64(time.Second))
	if c.count < 0 || c.count > 0 && c.interval == 0 {
		return c, usageError{fmt.Errorf("counters: -n %d: want a positive count, with -d", c.count)}
	}
	return c, nil
}

// counters runs `xdpnet counters`.
func counters(args []string, stdout io.Writer) error {
	c, err := parseCounters(args)
	if err != nil {
		return err
	}
	// A connection per snapshot: -d's interval may be longer than the
	// admin socket lets a connection idle.
	snapshot := func() (sockapi.AdminInfo, []sockapi.Counter, error) {
		cl, info, err := c.attach()
		if err != nil {
			return sockapi.AdminInfo{}, nil, err
		}
		defer cl.Close()
		cs, err := cl.Counters()
		return info, cs.Counters, err
	}
	info, prev, err := snapshot()
	if err != nil {
		return err
	}
	if c.interval == 0 {
		values := make([]int64, len(prev))
		for i, n := range prev {
			values[i] = int64(n.Value)
		}
		return c.report(stdout, info, prev, values)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for n := 0; c.count == 0 || n < c.count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		info, cur, err := snapshot()
		if err != nil {
			return err
		}
		if err := c.report(stdout, info, cur, deltas(prev, cur)); err != nil {
			return err
		}
		prev = cur
	}
	return nil
}

// deltas is each of cur's counters less its value in prev (signed: a
// gauge, XdpnetArpEntries, may fall; a counter new in cur counts from 0).
func deltas(prev, cur []sockapi.Counter) []int64 {
	old := make(map[string]uint64, len(prev))
	for _, n := range prev {
		old[n.Name] = n.Value
	}
	d := make([]int64, len(cur))
	for i, n := range cur {
		d[i] = int64(n.Value - old[n.Name])
	}
	return d
}

// report prints counters cs with values, as nstat does (name, value),
// or as one JSON object in nstat's order; zeros only with -a.
func (c countersConfig) report(w io.Writer, info sockapi.AdminInfo, cs []sockapi.Counter, values []int64) error {
	if c.json {
		var b strings.Builder
		b.WriteByte('{')
		sep := ""
		for i, n := range cs {
			if values[i] == 0 && !c.all {
				continue
			}
			name, _ := json.Marshal(n.Name)
			fmt.Fprintf(&b, "%s%s:%d", sep, name, values[i])
			sep = ","
		}
		b.WriteString("}\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	// nstat's columns: names to the left, values to the right.
	nameW, valW := 0, 0
	for i, n := range cs {
		if values[i] != 0 || c.all {
			nameW, valW = max(nameW, len(n.Name)), max(valW, len(strconv.FormatInt(values[i], 10)))
		}
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "#xdpnet %s pid %d\n", stackName(info), info.PID)
	for i, n := range cs {
		if values[i] != 0 || c.all {
			fmt.Fprintf(b, "%-*s  %*d\n", nameW, n.Name, valW, values[i])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stackName names a stack by its interface, or by its address for a
// stack on links of its own.
func stackName(info sockapi.AdminInfo) string {
	if info.Interface != "" {
		return info.Interface
	}
	return info.Addr.String()
}

// arp runs `xdpnet arp`: the neighbour caches, as `ip neigh` prints.
func arp(args []string, stdout io.Writer) error {
	fs := newFlagSet("arp")
	var t target
	t.flags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := t.check("arp"); err != nil {
		return err
	}
	cl, info, err := t.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	ns, err := cl.Neighbors()
	if err != nil {
		return err
	}
	slices.SortStableFunc(ns, func(a, b sockapi.Neighbor) int {
		if n := a.IP.Compare(b.IP); n != 0 {
			return n
		}
		return a.Queue - b.Queue
	})
	if t.json {
		return printJSON(stdout, ns)
	}
	for _, n := range ns {
		line := n.IP.String() + " dev " + stackName(info)
		if n.MAC != nil {
			line += " lladdr " + n.MAC.String()
		}
		line += " " + n.State + " queue " + strconv.Itoa(n.Queue)
		if n.Queued > 0 {
			line += " waiting " + strconv.Itoa(n.Queued)
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// printJSON prints v as indented JSON; an empty list as [], not null.
func printJSON[T any](w io.Writer, v []T) error {
	if v == nil {
		v = []T{}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
