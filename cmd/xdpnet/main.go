// Command xdpnet runs the xdpnet stack on a network interface.
//
//	xdpnet serve -iface IF -addr 198.18.0.1/24 [-gw ADDR] [-queues N] [-http :80] [-admin PATH|off]
//	xdpnet sockets [-l] [-t] [-u] [-state LIST] [-port N] [-i] [-json] [-pid N | -iface IF | -socket PATH]
//	xdpnet counters [-a] [-d SECONDS [-n COUNT]] [-json] [-pid N | -iface IF | -socket PATH]
//	xdpnet arp [-json] [-pid N | -iface IF | -socket PATH]
//	xdpnet capture [-w FILE.pcap] [-c COUNT] [-G SECONDS] [-s SNAPLEN] [-json] [-pid N | -iface IF | -socket PATH] [EXPRESSION]
//	xdpnet load -iface IF -addr 198.18.0.2/24 [-c N] [-d DURATION] [-rate R] [-size B] [-json] URL
//
// sockets, counters, arp and capture attach to a running stack through its admin
// socket (serve's, or any program's with sockapi.Config.AdminSocket):
// the one running, or the one -pid, -iface or -socket picks.
//
// Every subcommand prints one clear line and exits non-zero when it fails.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// command is one subcommand: its flags and what it does with them.
type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

var commands = []command{
	{"serve", "put a stack on an interface: ARP, ping, echo (7), discard (9), chargen (19), HTTP with -http", serve},
	{"sockets", "a running stack's sockets, as netstat -ano: -l, -t, -u, -state, -port, -i for TCP details", sockets},
	{"counters", "a running stack's counters, as nstat: -a for zeros too, -d SECONDS for deltas", counters},
	{"arp", "a running stack's neighbour cache, as ip neigh", arp},
	{"capture", "a running stack's frames, as tcpdump: -w FILE.pcap, -c COUNT, -G SECONDS, [host H] [port P] [tcp|udp|icmp|arp]", capture},
	{"load", "a load generator on a stack: N connections of HTTP GETs or TCP echoes, closed loop or at a fixed rate", load},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "xdpnet:", err)
		}
		os.Exit(exitCode(err))
	}
}

// run dispatches to a subcommand.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return usageError{errors.New("no command given")}
		}
		return flag.ErrHelp
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout)
		}
	}
	usage(stderr)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: xdpnet <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'xdpnet <command> -h' lists a command's flags.")
}

// usageError is a mistake in the command line (exit status 2, like flag's).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// newFlagSet returns a flag set whose errors come back to the caller as
// usage errors instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("xdpnet "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses args into fs, wrapping mistakes as usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
