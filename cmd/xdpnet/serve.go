package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/udp"
)

// serve runs `xdpnet serve` until SIGINT or SIGTERM.
func serve(args []string, stdout io.Writer) error {
	c, err := parseServe(args)
	if err != nil {
		return err
	}
	dev, err := nic.OpenXDP(nic.XDPConfig{
		Interface: c.iface, Queues: c.queues, Addrs: []netip.Addr{c.addr.Addr()},
		Attach: c.mode, Replace: c.replace,
	})
	if err != nil {
		return explain(c.iface, err)
	}
	// The steering program goes with the device: on Close, and with the
	// process whatever ends it, since a bpf_link dies with its descriptor.
	defer dev.Close()

	var pollers []*fastpath.Poller
	for _, link := range dev.Links() {
		s := &services{}
		p, err := fastpath.New(fastpath.Config{
			Link:  link,
			IP:    ip.Config{Addr: c.addr, Gateway: c.gateway},
			Serve: s.serve,
		})
		if err != nil {
			return err
		}
		if err := s.bind(p.UDP()); err != nil {
			return err
		}
		pollers = append(pollers, p)
	}
	fastpath.Share(pollers...)
	sock := dev.Links()[0].Socket()
	copyMode := "copy mode"
	if sock.ZeroCopy() {
		copyMode = "zero-copy"
	}
	fmt.Fprintf(stdout, "xdpnet: serving %s on %s: %d queue(s), %s XDP, %s; ARP, ICMP echo, UDP echo (7) and discard (9)\n",
		c.addr, c.iface, c.queues, dev.Program().Mode(), copyMode)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, p := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	for q, p := range pollers {
		p.Close()
		ls := p.Link().Stats()
		fmt.Fprintf(stdout, "xdpnet: queue %d: received %d frames, sent %d; %d ping(s) answered, %d UDP datagram(s) in\n",
			q, ls.RxFrames, ls.TxFrames, p.IP().Stats().ICMP.OutEchoReps, p.UDP().Stats().InDatagrams)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "xdpnet: stopped; XDP program detached")
	return nil
}

// services are the RFC 862 echo and RFC 863 discard services on one poller.
type services struct {
	echo, discard *udp.Endpoint
	buf           [65536]byte
}

func (s *services) bind(t *udp.Table) (err error) {
	if s.echo, err = t.Bind(netip.AddrPortFrom(netip.Addr{}, 7)); err != nil {
		return fmt.Errorf("bind UDP echo: %w", err)
	}
	if s.discard, err = t.Bind(netip.AddrPortFrom(netip.Addr{}, 9)); err != nil {
		return fmt.Errorf("bind UDP discard: %w", err)
	}
	return nil
}

// serve runs on the poller's goroutine after every batch of input.
func (s *services) serve(time.Duration) {
	for {
		n, from, err := s.echo.ReadFrom(s.buf[:])
		if err != nil {
			break
		}
		// A full send queue drops the echo, as a busy UDP server would.
		s.echo.WriteTo(s.buf[:n], from)
	}
	for {
		if _, _, err := s.discard.ReadFrom(s.buf[:]); err != nil {
			break
		}
	}
}
