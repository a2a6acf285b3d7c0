// Command httpclient fetches a URL with net/http over xdpnet and prints
// the status, the body's size and its SHA-256. Its connections, and the
// DNS queries that resolve the URL's host, go through xdpnet, not the
// kernel.
//
//	httpclient -iface eth1 -addr 198.18.0.2/24 [-gw 198.18.0.1] [-dns 198.18.0.3:53] http://example.test/
//
// It needs root (or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK).
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/sockapi"
)

func main() {
	iface := flag.String("iface", "", "interface to run xdpnet on")
	addr := flag.String("addr", "", "xdpnet's address and prefix, like 198.18.0.2/24")
	gw := flag.String("gw", "", "default gateway (optional)")
	dns := flag.String("dns", "", "DNS server, like 198.18.0.3:53 (default: /etc/resolv.conf's)")
	timeout := flag.Duration("timeout", 30*time.Second, "time limit of the whole fetch")
	flag.Parse()
	prefix, err := netip.ParsePrefix(*addr)
	if err != nil || *iface == "" || flag.NArg() != 1 {
		log.Fatalf("httpclient: want -iface, -addr (like 198.18.0.2/24) and one URL")
	}
	cfg := sockapi.Config{Interface: *iface, Addr: prefix}
	if *gw != "" {
		if cfg.Gateway, err = netip.ParseAddr(*gw); err != nil {
			log.Fatalf("httpclient: -gw: %v", err)
		}
	}
	if *dns != "" {
		if cfg.Nameserver, err = netip.ParseAddrPort(*dns); err != nil {
			log.Fatalf("httpclient: -dns: %v", err)
		}
	}
	if err := fetch(cfg, flag.Arg(0), *timeout); err != nil {
		log.Fatal(err)
	}
}

// fetch gets url over a stack opened with cfg, closed before it returns.
func fetch(cfg sockapi.Config, url string, timeout time.Duration) error {
	stack, err := sockapi.Open(cfg)
	if err != nil {
		return err
	}
	defer stack.Close()
	// Dial resolves host names through stack.Resolver(), which sends
	// its queries over xdpnet's UDP to cfg.Nameserver.
	client := &http.Client{Transport: &http.Transport{DialContext: stack.DialContext}, Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("%s %d bytes sha256 %x\n", resp.Status, n, sum.Sum(nil))
	return nil
}
