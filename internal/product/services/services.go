// Package services holds the small services `xdpnet serve` runs on every
// poller, so that the command, tests and benchmarks serve the same way.
package services

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/udp"
)

// Well-known ports.
const (
	EchoPort    = 7 // RFC 862
	DiscardPort = 9 // RFC 863
)

// EchoDiscard is UDP echo and discard on one poller. Bind it to the
// poller's UDP table, and call Serve from the poller's OnRound hook: it
// runs on the poller's goroutine after every batch of input, so an echo leaves
// in the same batch as the request came.
type EchoDiscard struct {
	echo, discard *udp.Endpoint
	discarded     atomic.Int64
	buf           [65536]byte
}

// Bind binds both services' ports on t.
func (s *EchoDiscard) Bind(t *udp.Table) (err error) {
	if s.echo, err = t.Bind(netip.AddrPortFrom(netip.Addr{}, EchoPort)); err != nil {
		return fmt.Errorf("bind UDP echo: %w", err)
	}
	if s.discard, err = t.Bind(netip.AddrPortFrom(netip.Addr{}, DiscardPort)); err != nil {
		return fmt.Errorf("bind UDP discard: %w", err)
	}
	return nil
}

// Serve answers what the endpoints received.
func (s *EchoDiscard) Serve(time.Duration) {
	for {
		n, from, err := s.echo.ReadFrom(s.buf[:])
		if err != nil {
			break
		}
		// A full send queue drops the echo, as a busy UDP server would.
		s.echo.WriteTo(s.buf[:n], from)
	}
	var n int64
	for ; ; n++ {
		if _, _, err := s.discard.ReadFrom(s.buf[:]); err != nil {
			break
		}
	}
	s.discarded.Add(n)
}

// Discarded is the number of datagrams discard has taken; safe to read
// from any goroutine.
func (s *EchoDiscard) Discarded() int64 { return s.discarded.Load() }
