package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/product/httpsvc"
	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/inline"
)

// shutdownGrace bounds how long SIGINT or SIGTERM waits for HTTP
// requests in progress before closing their connections.
const shutdownGrace = 5 * time.Second

// serve runs `xdpnet serve` until SIGINT or SIGTERM.
func serve(args []string, stdout io.Writer) error {
	c, err := parseServe(args)
	if err != nil {
		return err
	}
	// The echo, discard and chargen services run on the pollers
	// themselves, bound before they start; HTTP runs on the stack's
	// sockets like any Go program's.
	var udpSvcs []*services.EchoDiscard
	var tcpSvcs []*services.TCPServices
	cfg := sockapi.Config{
		Interface: c.iface, Addr: c.addr, Gateway: c.gateway, Queues: c.queues,
		XDPMode: c.mode, Replace: c.replace, AdminSocket: c.admin,
		OnPoller: func(p inline.Poller) error {
			udpSvc, tcpSvc := &services.EchoDiscard{}, &services.TCPServices{}
			if err := udpSvc.Bind(p.UDP()); err != nil {
				return err
			}
			if err := tcpSvc.Listen(p.TCP()); err != nil {
				return err
			}
			p.OnRound(func(now time.Duration) {
				udpSvc.Serve(now)
				tcpSvc.Serve(now)
			})
			udpSvcs, tcpSvcs = append(udpSvcs, udpSvc), append(tcpSvcs, tcpSvc)
			return nil
		},
	}
	stack, err := sockapi.Open(cfg)
	adminNote := ""
	if c.admin != "" {
		adminNote = "; admin socket " + c.admin
	}
	var adminErr *sockapi.AdminSocketError
	if c.adminAuto && errors.As(err, &adminErr) {
		// The default place is a convenience: a stack run with
		// capabilities rather than root may not write /run. Serve
		// without it, and say so.
		adminNote = fmt.Sprintf("; no admin socket (%v; -admin PATH or %s=DIR gives one)", adminErr.Err, sockapi.AdminDirEnv)
		udpSvcs, tcpSvcs = nil, nil
		cfg.AdminSocket = ""
		stack, err = sockapi.Open(cfg)
	}
	if err != nil {
		return explain(c.iface, err)
	}
	// The steering program goes with the stack: on Close, and with the
	// process whatever ends it, since a bpf_link dies with its descriptor.
	defer stack.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var srv *http.Server
	var handler *httpsvc.Handler
	httpNote := ""
	if c.http != "" {
		ln, err := stack.Listen("tcp", c.http)
		if err != nil {
			return fmt.Errorf("serve: -http: %w", err)
		}
		handler = httpsvc.New(httpsvc.StackStatus(stack))
		srv = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				cancel(fmt.Errorf("http: %w", err))
			}
		}()
		httpNote = "; HTTP on " + ln.Addr().String()
	}

	info := stack.Info()
	copyMode := "copy mode"
	if info.ZeroCopy {
		copyMode = "zero-copy"
	}
	fmt.Fprintf(stdout, "xdpnet: serving %s on %s: %d queue(s), %s XDP, %s; ARP, ICMP echo; echo (7) and discard (9) on UDP and TCP, chargen (19) on TCP%s\n",
		info.Addr, info.Interface, info.Queues, info.XDPMode, copyMode, httpNote+adminNote)

	select {
	case <-ctx.Done():
	case <-stack.Failed():
		cancel(stack.Err())
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close() // requests still running after the grace: cut them
		}
		scancel()
	}
	closeErr := stack.Close()
	for _, line := range httpsvc.Summary(stack.Counters()) {
		fmt.Fprintf(stdout, "xdpnet: %s\n", line)
	}
	for q := range tcpSvcs {
		fmt.Fprintf(stdout, "xdpnet: queue %d services: %d TCP connection(s), %d UDP datagram(s) discarded\n",
			q, tcpSvcs[q].Stats().Accepted, udpSvcs[q].Discarded())
	}
	if handler != nil {
		hs := handler.Stats()
		fmt.Fprintf(stdout, "xdpnet: http: %d request(s), %d byte(s) sent, %d byte(s) hashed\n", hs.Requests, hs.Sent, hs.Hashed)
	}
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		if errors.Is(err, nic.ErrInterfaceRemoved) && closeErr != nil && closeErr.Error() == err.Error() {
			// One line that says what happened to what: Close's error
			// is the same failure again.
			return fmt.Errorf("%s: %w", c.iface, nic.ErrInterfaceRemoved)
		}
		return fmt.Errorf("serve: %w", errors.Join(err, closeErr))
	}
	if closeErr != nil {
		return fmt.Errorf("serve: %w", closeErr)
	}
	fmt.Fprintln(stdout, "xdpnet: stopped; XDP program detached")
	return nil
}
