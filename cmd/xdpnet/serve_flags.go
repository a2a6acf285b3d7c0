package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"github.com/xdpnet/xdpnet/xdp/steer"
)

// serveConfig is what `xdpnet serve` was asked to do.
type serveConfig struct {
	iface   string
	addr    netip.Prefix
	gateway netip.Addr // invalid: none
	queues  int
	mode    steer.Mode
	replace bool
	http    string // address of the HTTP service; empty: none
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
	c.addr = p
	if gw != "" {
		if c.gateway, err = netip.ParseAddr(gw); err != nil || !c.gateway.Is4() {
			return c, usageError{fmt.Errorf("serve: -gw %q: want an IPv4 address", gw)}
		}
		if !p.Masked().Contains(c.gateway) || c.gateway == p.Addr() {
			return c, usageError{fmt.Errorf("serve: -gw %s is not another address on %s", c.gateway, p.Masked())}
		}
	}
	if c.queues < 1 || c.queues > 64 {
		return c, usageError{fmt.Errorf("serve: -queues %d: want 1 to 64", c.queues)}
	}
	if c.http != "" {
		if _, port, err := net.SplitHostPort(c.http); err != nil || port == "" {
			return c, usageError{fmt.Errorf("serve: -http %q: want [host]:port, like :80", c.http)}
		}
	}
	if c.mode, err = steer.ParseMode(mode); err != nil {
		return c, usageError{fmt.Errorf("serve: -xdp-mode: %w", err)}
	}
	return c, nil
}

// explain turns the errors users meet when opening an interface into one
// line that says what to do.
func explain(iface string, err error) error {
	switch {
	case strings.Contains(err.Error(), "no such network interface"): // net's errors carry no errno for it
		return fmt.Errorf("interface %q not found (see `ip link`)", iface)
	case errors.Is(err, steer.ErrForeignProgram):
		return fmt.Errorf("%s already runs an XDP program someone else attached; detach it (ip link set dev %s xdp off) or pass -replace: %w", iface, iface, err)
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		if os.Geteuid() != 0 {
			return fmt.Errorf("permission denied: run as root, or with CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK: %w", err)
		}
		return fmt.Errorf("permission denied even as root (a security module, or locked memory?): %w", err)
	}
	return err
}
