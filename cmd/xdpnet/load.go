package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/latency"
	"github.com/xdpnet/xdpnet/internal/product/loadgen"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/sockapi"
)

// loadConfig is what `xdpnet load` was asked to do.
type loadConfig struct {
	stackFlags
	conns    int
	duration time.Duration
	rate     float64
	size     int
	timeout  time.Duration
	json     bool
	// src are the addresses connections go from, in turn (-src); none:
	// the stack's -addr.
	src     []netip.Addr
	srcText string
	url     string // http://host[:port]/path or tcp://host:port
	// target and hostPort are what url names: the protocol, and where.
	target   loadgen.Target
	hostPort string
}

func parseLoad(args []string) (loadConfig, error) {
	fs := newFlagSet("load")
	var c loadConfig
	c.register(fs)
	fs.IntVar(&c.conns, "c", 10, "connections, each with one request outstanding")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to send requests")
	fs.Float64Var(&c.rate, "rate", 0, "total requests a second, spread over the connections, latency from each one's intended send time (default 0: as fast as the server answers)")
	fs.IntVar(&c.size, "size", 64, "bytes of each echo request (tcp:// only)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "bound on each request and each connect")
	fs.BoolVar(&c.json, "json", false, "print the result as JSON")
	fs.StringVar(&c.srcText, "src", "", fmt.Sprintf("source addresses on the -addr subnet, the connections taking them in turn: a range 198.18.0.10-198.18.0.40, an address, or a comma-separated list of both; at most %d (each address has its own ephemeral ports towards the server)", maxSrc))
	// The URL may come before flags, as wrk takes it, or after them.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.url, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err}
	}
	if c.url == "" && fs.NArg() > 0 {
		c.url = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:]); err != nil {
			return c, err
		}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := c.check("load"); err != nil {
		return c, err
	}
	if c.url == "" {
		return c, usageError{errors.New("load: want a URL, http://host[:port]/path or tcp://host:port")}
	}
	switch {
	case c.conns < 1 || c.conns > 100000:
		return c, usageError{fmt.Errorf("load: -c %d: want 1 to 100000 connections", c.conns)}
	case c.duration <= 0:
		return c, usageError{fmt.Errorf("load: -d %v: want a positive duration", c.duration)}
	case c.rate < 0:
		return c, usageError{fmt.Errorf("load: -rate %v: want a positive rate, or 0", c.rate)}
	case c.timeout <= 0:
		return c, usageError{fmt.Errorf("load: -timeout %v: want a positive duration", c.timeout)}
	}
	var err error
	if c.target, c.hostPort, err = c.parseURL(); err != nil {
		return c, usageError{fmt.Errorf("load: %w", err)}
	}
	if c.srcText != "" {
		if c.src, err = parseSrc(c.srcText, c.addr); err != nil {
			return c, usageError{fmt.Errorf("load: -src %q: %w", c.srcText, err)}
		}
	}
	return c, nil
}

// maxSrc bounds -src: the secondary addresses a stack can have (so, with
// -addr, what the steering program holds).
const maxSrc = ip.MaxSecondary

// parseSrc parses -src: ranges "A-B" and addresses, comma-separated,
// each address on stack's subnet and a host address there, none twice.
func parseSrc(text string, stack netip.Prefix) ([]netip.Addr, error) {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, part := range strings.Split(text, ",") {
		loText, hiText, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := netip.ParseAddr(strings.TrimSpace(loText))
		if err != nil || !lo.Is4() {
			return nil, fmt.Errorf("%q: want an IPv4 address or a range A-B", part)
		}
		hi := lo
		if isRange {
			if hi, err = netip.ParseAddr(strings.TrimSpace(hiText)); err != nil || !hi.Is4() || hi.Less(lo) {
				return nil, fmt.Errorf("%q: want a range A-B of IPv4 addresses, A at most B", part)
			}
		}
		for a := lo; ; a = a.Next() {
			switch {
			case len(out) == maxSrc:
				return nil, fmt.Errorf("more than %d addresses", maxSrc)
			case seen[a]:
				return nil, fmt.Errorf("%v given twice", a)
			}
			if err := hostAddr(stack, a); err != nil || !stack.Masked().Contains(a) {
				return nil, fmt.Errorf("%v is not a host address of -addr's subnet %v", a, stack.Masked())
			}
			seen[a] = true
			out = append(out, a)
			if a == hi {
				break
			}
		}
	}
	return out, nil
}

// secondary are the -src addresses the stack takes on besides -addr.
func (c *loadConfig) secondary() []netip.Addr {
	return slices.DeleteFunc(slices.Clone(c.src), func(a netip.Addr) bool { return a == c.addr.Addr() })
}

// dialer dials the target from the -src addresses in turn, or from
// -addr.
func (c *loadConfig) dialer(stack *sockapi.Stack) func(ctx context.Context) (net.Conn, error) {
	if len(c.src) == 0 {
		return func(ctx context.Context) (net.Conn, error) { return stack.DialContext(ctx, "tcp", c.hostPort) }
	}
	var next atomic.Uint64
	return func(ctx context.Context) (net.Conn, error) {
		src := c.src[(next.Add(1)-1)%uint64(len(c.src))]
		d := sockapi.Dialer{Stack: stack, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
		return d.DialContext(ctx, "tcp", c.hostPort)
	}
}

// parseURL is the protocol and the host:port the URL names.
func (c *loadConfig) parseURL() (loadgen.Target, string, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, "", err
	}
	if u.Hostname() == "" {
		return nil, "", fmt.Errorf("%q: no host", c.url)
	}
	switch u.Scheme {
	case "http":
		t, err := loadgen.NewHTTP(c.url)
		port := u.Port()
		if port == "" {
			port = "80"
		}
		return t, net.JoinHostPort(u.Hostname(), port), err
	case "tcp":
		if u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return nil, "", fmt.Errorf("%q: want tcp://host:port, the echo service", c.url)
		}
		t, err := loadgen.NewEcho(c.size)
		return t, u.Host, err
	}
	return nil, "", fmt.Errorf("%q: want http://host[:port]/path or tcp://host:port", c.url)
}

// load runs `xdpnet load`: a stack on the interface, then the run; it
// fails when any request failed.
func load(args []string, stdout io.Writer) error {
	c, err := parseLoad(args)
	if err != nil {
		return err
	}
	cfg := c.config()
	cfg.Secondary = c.secondary()
	stack, err := sockapi.Open(cfg)
	if err != nil {
		return explain(c.iface, err)
	}
	defer stack.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode := "closed loop, as fast as answered"
	if c.rate > 0 {
		mode = fmt.Sprintf("%g requests/s, latency from the intended send time", c.rate)
	}
	if !c.json {
		from := c.addr.String()
		if len(c.src) > 0 {
			from = fmt.Sprintf("%d source addresses %v…%v", len(c.src), c.src[0], c.src[len(c.src)-1])
		}
		fmt.Fprintf(stdout, "Running %v test @ %s\n  %d connections from xdpnet on %s (%s), %s\n", c.duration, c.url, c.conns, c.iface, from, mode)
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Conns: c.conns, Duration: c.duration, Rate: c.rate, Timeout: c.timeout,
		Target: c.target, Progress: progressPrinter(os.Stderr, c.duration),
		Dial: c.dialer(stack)})
	if err != nil {
		return err
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(loadJSON(c, res)); err != nil {
			return err
		}
	} else {
		printLoad(stdout, res)
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("load: interrupted after %v", res.Elapsed.Round(time.Millisecond))
	case res.Failed > 0:
		return fmt.Errorf("load: %d of %d requests failed: %s", res.Failed, res.Failed+res.Requests, strings.Join(res.ErrorReasons(), ", "))
	}
	return nil
}

// progressPrinter prints a progress line a second: rewritten in place on
// a terminal, a plain line otherwise.
func progressPrinter(w *os.File, total time.Duration) func(loadgen.Progress) {
	fi, err := w.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return func(p loadgen.Progress) {
		line := fmt.Sprintf("%5.1fs/%v  %d requests  %.0f/s  %d errors  %d/%d connected",
			p.Elapsed.Seconds(), total, p.Requests, p.RecentRate, p.Errors, p.Connected, p.Target)
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", line)
			if p.Elapsed >= total {
				fmt.Fprintln(w)
			}
			return
		}
		fmt.Fprintln(w, line)
	}
}

// percentiles are those the summary prints, as wrk2's.
var percentiles = []float64{50, 75, 90, 99, 99.9, 99.99, 99.999, 100}

// printLoad prints a run's summary, as wrk's.
func printLoad(w io.Writer, r *loadgen.Result) {
	h := r.Latency
	fmt.Fprintf(w, "  Latency   avg %v  stdev %v  max %v\n", round(h.Mean()), round(h.Stdev()), round(h.Max()))
	fmt.Fprintln(w, "  Latency distribution (HdrHistogram-style, 1/128 precision)")
	for _, p := range percentiles {
		fmt.Fprintf(w, "  %8.3f%%  %v\n", p, round(h.Quantile(p/100)))
	}
	fmt.Fprintf(w, "  %d requests in %v, %s read\n", r.Requests, r.Elapsed.Round(10*time.Millisecond), bytesText(float64(r.Bytes)))
	if r.Failed > 0 {
		fmt.Fprintf(w, "  Failed requests: %d (%s)\n", r.Failed, strings.Join(r.ErrorReasons(), ", "))
	}
	fmt.Fprintf(w, "Requests/sec: %10.2f\nTransfer/sec: %10s\n", r.Rate(), bytesText(float64(r.Bytes)/r.Elapsed.Seconds()))
}

// round keeps a latency's three significant digits or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Nanosecond)
}

func bytesText(b float64) string {
	for _, u := range []string{"B", "KB", "MB", "GB"} {
		if b < 1000 || u == "GB" {
			return fmt.Sprintf("%.2f%s", b, u)
		}
		b /= 1000
	}
	return ""
}

// loadResult is the JSON of a run: its field names are stable.
type loadResult struct {
	URL         string            `json:"url"`
	Connections int               `json:"connections"`
	SourceAddrs int               `json:"source_addrs,omitempty"` // -src's count
	DurationS   float64           `json:"duration_s"`
	TargetRate  float64           `json:"target_rate,omitempty"`
	Requests    uint64            `json:"requests"`
	Failed      uint64            `json:"failed"`
	Errors      map[string]uint64 `json:"errors"`
	Bytes       uint64            `json:"bytes"`
	ElapsedS    float64           `json:"elapsed_s"`
	RequestsPS  float64           `json:"requests_per_s"`
	MaxConns    int               `json:"max_connections"`
	LatencyUS   latencyJSON       `json:"latency_us"`
}

// latencyJSON is a histogram's summary in microseconds.
type latencyJSON struct {
	Min         float64            `json:"min"`
	Mean        float64            `json:"mean"`
	Stdev       float64            `json:"stdev"`
	Max         float64            `json:"max"`
	Percentiles map[string]float64 `json:"percentiles"`
}

func loadJSON(c loadConfig, r *loadgen.Result) loadResult {
	return loadResult{URL: c.url, Connections: c.conns, SourceAddrs: len(c.src), DurationS: c.duration.Seconds(), TargetRate: c.rate,
		Requests: r.Requests, Failed: r.Failed, Errors: r.Errors, Bytes: r.Bytes, ElapsedS: r.Elapsed.Seconds(),
		RequestsPS: r.Rate(), MaxConns: r.Conns, LatencyUS: histJSON(r.Latency)}
}

func histJSON(h *latency.Histogram) latencyJSON {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	l := latencyJSON{Min: us(h.Min()), Mean: us(h.Mean()), Stdev: us(h.Stdev()), Max: us(h.Max()), Percentiles: map[string]float64{}}
	for _, p := range percentiles {
		l.Percentiles[fmt.Sprintf("p%g", p)] = us(h.Quantile(p / 100))
	}
	return l
}
