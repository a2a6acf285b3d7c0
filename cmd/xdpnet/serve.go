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
	"github.com/xdpnet/xdpnet/internal/services"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
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
		udpSvc, tcpSvc := &services.EchoDiscard{}, &services.TCPServices{}
		p, err := fastpath.New(fastpath.Config{
			Link: link,
			IP:   ip.Config{Addr: c.addr, Gateway: c.gateway},
			Serve: func(now time.Duration) {
				udpSvc.Serve(now)
				tcpSvc.Serve(now)
			},
		})
		if err != nil {
			return err
		}
		if err := udpSvc.Bind(p.UDP()); err != nil {
			return err
		}
		if err := tcpSvc.Listen(p.TCP()); err != nil {
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
	fmt.Fprintf(stdout, "xdpnet: serving %s on %s: %d queue(s), %s XDP, %s; ARP, ICMP echo; echo (7) and discard (9) on UDP and TCP, chargen (19) on TCP\n",
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
		ts := p.TCP().Stats()
		fmt.Fprintf(stdout, "xdpnet: queue %d: received %d frames, sent %d; %d ping(s) answered, %d UDP datagram(s) in; TCP: %d connection(s) accepted, %d segments in, %d out, %d retransmitted\n",
			q, ls.RxFrames, ls.TxFrames, p.IP().Stats().ICMP.OutEchoReps, p.UDP().Stats().InDatagrams,
			ts.PassiveOpens, ts.InSegs, ts.OutSegs, ts.RetransSegs)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "xdpnet: stopped; XDP program detached")
	return nil
}
