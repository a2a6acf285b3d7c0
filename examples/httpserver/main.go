// Command httpserver is a net/http server on xdpnet: the kernel never sees
// its traffic. It serves internal/product/httpsvc (GET /bytes/N, POST /sha256,
// GET /) until SIGINT or SIGTERM.
//
//	httpserver -iface eth1 -addr 198.18.0.2/24 -listen :80
//
// It needs root (or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK).
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/product/httpsvc"
	"github.com/xdpnet/xdpnet/sockapi"
)

func main() {
	iface := flag.String("iface", "", "interface to run xdpnet on")
	addr := flag.String("addr", "", "xdpnet's address and prefix, like 198.18.0.2/24")
	listen := flag.String("listen", ":80", "address to serve HTTP on")
	flag.Parse()
	prefix, err := netip.ParsePrefix(*addr)
	if err != nil || *iface == "" {
		log.Fatalf("httpserver: want -iface and -addr (like 198.18.0.2/24)")
	}
	if err := serve(sockapi.Config{Interface: *iface, Addr: prefix}, *listen); err != nil {
		log.Fatal(err)
	}
}

// serve serves HTTP on listen over a stack opened with cfg until a
// signal, and closes the stack.
func serve(cfg sockapi.Config, listen string) error {
	stack, err := sockapi.Open(cfg)
	if err != nil {
		return err
	}
	defer stack.Close()
	ln, err := stack.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: httpsvc.New(httpsvc.StackStatus(stack)), ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("httpserver: serving on %s", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	<-shut // Serve returns as Shutdown starts: let requests finish
	return nil
}
