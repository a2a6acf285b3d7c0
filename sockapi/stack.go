package sockapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/xdp"
)

// Stack is a running xdpnet stack: pollers on the queues of one
// interface (or of the links given to New), and the sockets on them.
// Its methods are safe for concurrent use.
type Stack struct {
	cfg      Config
	tcp      tcp.Config     // cfg's, translated: every poller's
	dev      *nic.XDPDevice // nil for New
	pollers  []*fastpath.Poller
	cancel   context.CancelFunc
	running  sync.WaitGroup // the pollers' goroutines
	next     atomic.Uint32  // round robin of Dial over the pollers
	done     chan struct{}  // closed by Close
	stopped  chan struct{}  // closed by Close once the pollers stopped and the links closed
	failed   chan struct{}  // closed when a poller fails; err says why
	failure  sync.Once
	err      error
	closing  sync.Once
	mu       sync.Mutex
	socks    map[closer]struct{} // open connections, listeners and packet conns
	admin    *adminServer        // nil without Config.AdminSocket
	capMu    sync.Mutex
	captures []*Capture // running, each seen by every poller's tap (capture.go)
}

// closer is a socket the stack closes with itself.
type closer interface{ close() }

// Open opens cfg.Interface for xdpnet: it attaches the steering program
// (only traffic for cfg.Addr and cfg.Secondary leaves the kernel), binds a socket per
// queue, and starts a poller per queue. Close undoes all of it.
func Open(cfg Config) (*Stack, error) {
	if cfg.Queues == 0 {
		cfg.Queues = 1
	}
	admin, err := listenAdmin(cfg.AdminSocket, cfg.adminIdle)
	if err != nil {
		return nil, err
	}
	dev, err := nic.OpenXDP(nic.XDPConfig{
		Interface: cfg.Interface, Queues: cfg.Queues, Addrs: append([]netip.Addr{cfg.Addr.Addr()}, cfg.Secondary...),
		Attach: cfg.XDPMode.steer(), Replace: cfg.Replace,
	})
	if err != nil {
		admin.close()
		return nil, fmt.Errorf("sockapi: %w", err)
	}
	links := make([]nic.Link, 0, len(dev.Links()))
	for _, l := range dev.Links() {
		links = append(links, l)
	}
	// With the NIC's RSS key, flow ownership matches its steering and
	// dialled connections need no handover; without it (veth), the
	// default key still makes the pollers agree.
	var rss fastpath.RSS
	if cfg.Queues > 1 {
		rss.Key, rss.Indir, _ = xdp.ReadRSS(cfg.Interface)
	}
	s, err := newStack(cfg, rss, links, admin)
	if err != nil {
		dev.Close()
		return nil, err
	}
	s.dev = dev
	// A parked poller cannot see its interface go (the socket's poll
	// reports nothing once unbound): the device's netlink watch tells.
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		select {
		case <-dev.Gone():
			s.fail(fmt.Errorf("sockapi: %s: %w", cfg.Interface, nic.ErrInterfaceRemoved))
		case <-s.done:
		}
	}()
	return s, nil
}

// New starts a stack on links: one poller per link, as for the queues of
// one device (ARP replies are shared among them). Tests and simulations
// use it with pipe links; Close closes the links.
func New(cfg Config, links ...nic.Link) (*Stack, error) {
	if len(links) == 0 {
		return nil, errors.New("sockapi: no link")
	}
	admin, err := listenAdmin(cfg.AdminSocket, cfg.adminIdle)
	if err != nil {
		return nil, err
	}
	return newStack(cfg, fastpath.RSS{}, links, admin)
}

// newStack starts the pollers on links, and admin (nil for none) when
// they run; on failure it closes admin.
func newStack(cfg Config, rss fastpath.RSS, links []nic.Link, admin *adminServer) (*Stack, error) {
	tcpCfg, udpCfg := cfg.protocols()
	s := &Stack{cfg: cfg, tcp: tcpCfg, done: make(chan struct{}), stopped: make(chan struct{}), failed: make(chan struct{}), socks: map[closer]struct{}{}, admin: admin}
	for _, link := range links {
		p, err := fastpath.New(fastpath.Config{
			Link: link,
			IP:   ip.Config{Addr: cfg.Addr, Secondary: cfg.Secondary, Gateway: cfg.Gateway},
			ARP:  arp.Config{MaxRetries: cfg.ARPRetries, RetransTime: cfg.ARPInterval},
			TCP:  tcpCfg, UDP: udpCfg,
			Spin: cfg.Spin, SpinOnly: cfg.SpinOnly,
		})
		if err != nil {
			for _, p := range s.pollers {
				p.Close()
			}
			admin.close()
			return nil, fmt.Errorf("sockapi: %w", err)
		}
		s.pollers = append(s.pollers, p)
	}
	fastpath.Share(s.pollers...)
	for _, p := range s.pollers {
		p.SetRSS(rss)
	}
	for _, p := range s.pollers {
		if cfg.OnPoller == nil {
			break
		}
		if err := cfg.OnPoller(p); err != nil {
			for _, p := range s.pollers {
				p.Close()
			}
			admin.close()
			return nil, fmt.Errorf("sockapi: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for q, p := range s.pollers {
		s.running.Add(1)
		go func() {
			defer s.running.Done()
			if err := p.Run(ctx); err != nil {
				s.fail(fmt.Errorf("sockapi: queue %d: %w", q, err))
			}
		}()
	}
	if s.admin != nil {
		s.admin.start(s)
	}
	return s, nil
}

// fail records the stack's first failure.
func (s *Stack) fail(err error) {
	s.failure.Do(func() {
		s.err = err
		close(s.failed)
	})
}

// Failed is closed when the stack fails: a poller's link broke, or the
// interface was removed (nic.ErrInterfaceRemoved, seen within
// milliseconds even when idle); Err then says why. The stack's sockets
// stop moving data: close it. A link that only goes down (a flap, a lost
// carrier) is no failure: connections resume when it is back.
func (s *Stack) Failed() <-chan struct{} { return s.failed }

// Err is why the stack failed, or nil.
func (s *Stack) Err() error {
	select {
	case <-s.failed:
		return s.err
	default:
		return nil
	}
}

// Close closes every socket of the stack, stops the pollers, and, for a
// stack from Open, detaches the XDP program and frees the UMEM. Blocked
// calls on the stack's sockets return net.ErrClosed.
func (s *Stack) Close() error {
	var err error
	s.closing.Do(func() {
		s.admin.close() // first: its socket goes before the stack
		s.mu.Lock()
		socks := make([]closer, 0, len(s.socks))
		for c := range s.socks {
			socks = append(socks, c)
		}
		s.mu.Unlock()
		for _, c := range socks {
			c.close()
		}
		// Let the pollers send the FINs and RSTs of the closes.
		s.each(func(p *fastpath.Poller) {})
		close(s.done)
		s.cancel()
		s.running.Wait()
		err = s.Err()
		for _, p := range s.pollers {
			p.Close()
			err = errors.Join(err, p.Link().Close())
		}
		if s.dev != nil {
			err = errors.Join(err, s.dev.Close())
		}
		close(s.stopped)
	})
	return err
}

// each runs fn on every poller's goroutine and waits for all.
func (s *Stack) each(fn func(*fastpath.Poller)) {
	for _, p := range s.pollers {
		s.do(background, p, func() { fn(p) })
	}
}

// do runs fn on p's goroutine and waits for it, or for ctx or the
// stack's end.
func (s *Stack) do(ctx context.Context, p *fastpath.Poller, fn func()) error {
	done := make(chan struct{})
	p.Do(func() {
		fn()
		close(done)
	})
	select {
	case <-done:
		return nil
	case <-s.done:
		return net.ErrClosed
	case <-s.failed:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Stack) track(c closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.socks[c] = struct{}{}
	return true
}

func (s *Stack) untrack(c closer) {
	s.mu.Lock()
	delete(s.socks, c)
	s.mu.Unlock()
}

// dialPoller chooses the poller of a new outgoing connection: for a
// given local port, the one that owns the flow (its return traffic lands
// there, or is handed over there); for an ephemeral one, the next in
// turn, whose Dial picks a port it owns.
func (s *Stack) dialPoller(local, raddr netip.AddrPort) *fastpath.Poller {
	if local.Port() != 0 {
		if local.Addr().IsUnspecified() {
			local = netip.AddrPortFrom(s.Addr(), local.Port())
		}
		for _, p := range s.pollers {
			if p.OwnsDial(local, raddr) {
				return p
			}
		}
	}
	return s.pollers[int(s.next.Add(1)-1)%len(s.pollers)]
}

// StackInfo describes a stack's interface and queues.
type StackInfo struct {
	Interface string       `json:"interface"` // the interface of Open; empty for a stack from New
	Addr      netip.Prefix `json:"addr"`      // the stack's address and subnet
	Queues    int          `json:"queues"`    // pollers, one per NIC queue
	MTU       int          `json:"mtu"`       // the link's
	// XDPMode is the steering program's attach mode, XDPNative or
	// XDPGeneric; XDPAuto (zero) for a stack from New.
	XDPMode XDPMode `json:"xdp_mode"`
	// ZeroCopy reports whether every queue's AF_XDP socket runs in
	// zero-copy mode (the driver's; veth has only copy mode).
	ZeroCopy bool `json:"zero_copy"`
}

// Info describes the stack's interface and queues.
func (s *Stack) Info() StackInfo {
	i := StackInfo{Interface: s.cfg.Interface, Addr: s.cfg.Addr, Queues: len(s.pollers), MTU: s.pollers[0].Link().MTU()}
	if s.dev != nil {
		i.XDPMode = xdpMode(s.dev.Program().Mode())
		i.ZeroCopy = true
		for _, l := range s.dev.Links() {
			i.ZeroCopy = i.ZeroCopy && l.Socket().ZeroCopy()
		}
	} else {
		i.Interface = ""
	}
	return i
}

// Addr is the stack's address.
func (s *Stack) Addr() netip.Addr { return s.cfg.Addr.Addr() }
