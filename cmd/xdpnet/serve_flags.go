package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// serveConfig is what `xdpnet serve` was asked to do.
type serveConfig struct {
	iface   string
	addr    netip.Prefix
	gateway netip.Addr // invalid: none
	queues  int
	mode    sockapi.XDPMode
	replace bool
	http    string // address of the HTTP service; empty: none
	admin   string // path of the admin socket; empty: none
	// adminAuto: admin is the default place, which serve does without
	// if it cannot make it there.
	adminAuto bool
}

func parseServe(args []string) (serveConfig, error) {
	fs := newFlagSet("serve")
	var c serveConfig
	var addr, gw, mode string
	fs.StringVar(&c.iface, "iface", "", "interface to put the stack on (required)")
	fs.StringVar(&addr, "addr", "", "the stack's IPv4 address and prefix length, like 198.18.0.1/24 (required)")
	fs.StringVar(&gw, "gw", "", "default gateway, on the -addr subnet (optional)")
	fs.IntVar(&c.queues, "queues", 1, "NIC queues to serve, one poller each")
	fs.StringVar(&mode, "xdp-mode", "auto", "XDP attach mode: auto (native, else generic), native or generic")
	fs.BoolVar(&c.replace, "replace", false, "replace an XDP program someone else attached with ip link")
	fs.StringVar(&c.http, "http", "", "serve HTTP (GET /bytes/N, POST /sha256, GET /) on this address, like :80 (default: off)")
	fs.StringVar(&c.admin, "admin", "auto", "admin socket, for xdpnet sockets, counters and arp: a path, auto ("+sockapi.AdminDir()+"/<iface>.<pid>.sock) or off")
	if err := parse(fs, args); err != nil {
		return c, err
	}
	if c.iface == "" {
		return c, usageError{errors.New("serve: -iface is required")}
	}
	if addr == "" {
		return c, usageError{errors.New("serve: -addr is required")}
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil || !p.Addr().Is4() || p.Bits() < 1 || p.Bits() > 32 {
		return c, usageError{fmt.Errorf("serve: -addr %q: want an IPv4 address with a prefix length, like 198.18.0.1/24", addr)}
	}
	if err := hostAddr(p, p.Addr()); err != nil {
		return c, usageError{fmt.Errorf("serve: -addr %s: %w", p, err)}
	}
	c.addr = p
	if gw != "" {
		if c.gateway, err = netip.ParseAddr(gw); err != nil || !c.gateway.Is4() {
			return c, usageError{fmt.Errorf("serve: -gw %q: want an IPv4 address", gw)}
		}
		if !p.Masked().Contains(c.gateway) || c.gateway == p.Addr() {
			return c, usageError{fmt.Errorf("serve: -gw %s is not another address on %s", c.gateway, p.Masked())}
		}
		if err := hostAddr(p, c.gateway); err != nil {
			return c, usageError{fmt.Errorf("serve: -gw %s: %w", c.gateway, err)}
		}
	}
	if c.queues < 1 || c.queues > 64 {
		return c, usageError{fmt.Errorf("serve: -queues %d: want 1 to 64", c.queues)}
	}
	if c.http != "" {
		if err := checkListenAddr(c.http, p.Addr()); err != nil {
			return c, usageError{fmt.Errorf("serve: -http %q: %w", c.http, err)}
		}
	}
	switch c.admin {
	case "auto":
		c.admin, c.adminAuto = sockapi.AdminSocketPath(c.iface), true
	case "off":
		c.admin = ""
	case "":
		return c, usageError{errors.New("serve: -admin: want a path, auto or off")}
	}
	if c.mode, err = sockapi.ParseXDPMode(mode); err != nil {
		return c, usageError{fmt.Errorf("serve: -xdp-mode: %w", err)}
	}
	return c, nil
}

// hostAddr checks that a, on subnet p, can be a host's address: unicast,
// and neither the subnet's network nor its broadcast address (RFC 919,
// RFC 922), except on /31 and /32 subnets, which have neither (RFC 3021).
func hostAddr(p netip.Prefix, a netip.Addr) error {
	if !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() { // also refuses 255.255.255.255
		return errors.New("not a unicast address")
	}
	if p.Bits() >= 31 {
		return nil
	}
	network := p.Masked().Addr().As4()
	broadcast := network
	for i := p.Bits(); i < 32; i++ {
		broadcast[i/8] |= 0x80 >> (i % 8)
	}
	switch a.As4() {
	case network:
		return fmt.Errorf("the network address of %s, no host's; hosts are %s to %s", p.Masked(),
			netip.AddrFrom4(network).Next(), netip.AddrFrom4(broadcast).Prev())
	case broadcast:
		return fmt.Errorf("the broadcast address of %s, no host's; hosts are %s to %s", p.Masked(),
			netip.AddrFrom4(network).Next(), netip.AddrFrom4(broadcast).Prev())
	}
	return nil
}

// checkListenAddr checks a [host]:port to listen on: the host empty, or
// the stack's address (or 0.0.0.0), and the port a number from 1 to 65535.
func checkListenAddr(hostPort string, ours netip.Addr) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return errors.New("want [host]:port, like :80")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	if host != "" {
		if a, err := netip.ParseAddr(host); err != nil || a != ours && a != netip.IPv4Unspecified() {
			return fmt.Errorf("host %q: want the stack's address %s, or none", host, ours)
		}
	}
	return nil
}

// explain turns the errors users meet when opening an interface into one
// line that says what to do.
func explain(iface string, err error) error {
	var held *steer.LinkHeldError
	var adminErr *sockapi.AdminSocketError
	switch {
	case errors.As(err, &adminErr):
		return fmt.Errorf("%w; choose another with -admin PATH (or %s=DIR), or -admin off", err, sockapi.AdminDirEnv)
	case strings.Contains(err.Error(), "no such network interface"): // net's errors carry no errno for it
		return fmt.Errorf("interface %q not found (see `ip link`)", iface)
	case errors.As(err, &held):
		return fmt.Errorf("%s is in use by another process: %w", iface, err)
	case errors.Is(err, steer.ErrForeignProgram):
		return fmt.Errorf("%s already runs an XDP program someone else attached; detach it (ip link set dev %s xdp off) or pass -replace: %w", iface, iface, err)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return permissionError(ownMissingCaps(), err)
	}
	return err
}

// permissionError explains a refusal by the capabilities missing.
func permissionError(missing []capability, err error) error {
	if len(missing) == 0 {
		return fmt.Errorf("permission denied although xdpnet has CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN (a security module?): %w", err)
	}
	const need = "xdpnet needs CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN and CAP_IPC_LOCK, or root"
	var ms []string
	for _, c := range missing {
		ms = append(ms, fmt.Sprintf("%s (for %s)", c.name, c.why))
	}
	return fmt.Errorf("permission denied: missing %s; %s: %w", strings.Join(ms, ", "), need, err)
}
