package main

import (
	"flag"
	"fmt"
	"net/netip"

	"github.com/xdpnet/xdpnet/sockapi"
)

// stackFlags are the flags of every subcommand that puts a stack on an
// interface (serve, load): where, with what address, how.
type stackFlags struct {
	iface   string
	addr    netip.Prefix
	gateway netip.Addr // invalid: none
	queues  int
	mode    sockapi.XDPMode
	replace bool
	// The flags' text until check parses it.
	addrText, gwText, modeText string
}

// register adds the flags to fs.
func (c *stackFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.iface, "iface", "", "interface to put the stack on (required)")
	fs.StringVar(&c.addrText, "addr", "", "the stack's IPv4 address and prefix length, like 198.18.0.1/24 (required)")
	fs.StringVar(&c.gwText, "gw", "", "default gateway, on the -addr subnet (optional)")
	fs.IntVar(&c.queues, "queues", 1, "NIC queues to serve, one poller each")
	fs.StringVar(&c.modeText, "xdp-mode", "auto", "XDP attach mode: auto (native, else generic), native or generic")
	fs.BoolVar(&c.replace, "replace", false, "replace an XDP program someone else attached with ip link")
}

// check validates the parsed flags of command cmd, as usage errors.
func (c *stackFlags) check(cmd string) error {
	if c.iface == "" {
		return usageError{fmt.Errorf("%s: -iface is required", cmd)}
	}
	if c.addrText == "" {
		return usageError{fmt.Errorf("%s: -addr is required", cmd)}
	}
	p, err := netip.ParsePrefix(c.addrText)
	if err != nil || !p.Addr().Is4() || p.Bits() < 1 || p.Bits() > 32 {
		return usageError{fmt.Errorf("%s: -addr %q: want an IPv4 address with a prefix length, like 198.18.0.1/24", cmd, c.addrText)}
	}
	if err := hostAddr(p, p.Addr()); err != nil {
		return usageError{fmt.Errorf("%s: -addr %s: %w", cmd, p, err)}
	}
	c.addr = p
	if c.gwText != "" {
		if c.gateway, err = netip.ParseAddr(c.gwText); err != nil || !c.gateway.Is4() {
			return usageError{fmt.Errorf("%s: -gw %q: want an IPv4 address", cmd, c.gwText)}
		}
		if !p.Masked().Contains(c.gateway) || c.gateway == p.Addr() {
			return usageError{fmt.Errorf("%s: -gw %s is not another address on %s", cmd, c.gateway, p.Masked())}
		}
		if err := hostAddr(p, c.gateway); err != nil {
			return usageError{fmt.Errorf("%s: -gw %s: %w", cmd, c.gateway, err)}
		}
	}
	if c.queues < 1 || c.queues > 64 {
		return usageError{fmt.Errorf("%s: -queues %d: want 1 to 64", cmd, c.queues)}
	}
	if c.mode, err = sockapi.ParseXDPMode(c.modeText); err != nil {
		return usageError{fmt.Errorf("%s: -xdp-mode: %w", cmd, err)}
	}
	c.addrText, c.gwText, c.modeText = "", "", ""
	return nil
}

// config is the stack the flags describe.
func (c *stackFlags) config() sockapi.Config {
	return sockapi.Config{Interface: c.iface, Addr: c.addr, Gateway: c.gateway, Queues: c.queues,
		XDPMode: c.mode, Replace: c.replace}
}
