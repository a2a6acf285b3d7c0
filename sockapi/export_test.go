package sockapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// Device is the AF_XDP device under a stack from Open, for tests that
// check its sockets' frames.
func Device(s *Stack) *nic.XDPDevice { return s.dev }

// SetTCPHook has the stack of cfg edit its tcp.Config after translation,
// for tests of knobs no caller of Config needs (SynBacklog).
func SetTCPHook(cfg *Config, f func(*tcp.Config)) { cfg.tcpHook = f }

// Protocols is cfg translated, for the translation's test.
func Protocols(cfg Config) (tcp.Config, udp.Config) { return cfg.protocols() }

// SteerMode is m in the steering program's terms, for tests that open
// the device themselves.
func SteerMode(m XDPMode) steer.Mode { return m.steer() }

// SocketsHold is how long Sockets' copy held the pollers, summed, for
// its benchmark: the copy alone, without the Do queue's hand-off.
func SocketsHold(s *Stack) (held time.Duration) {
	var socks []Socket
	var infos []tcp.Info
	for q, p := range s.pollers {
		s.snapshot(p, func() {
			start := time.Now()
			socks, infos = appendSockets(socks, infos, q, p)
			held += time.Since(start)
		})
	}
	return held
}

// SetAdminIdle sets the admin endpoint's idle timeout, for the test of
// a silent client.
func SetAdminIdle(cfg *Config, d time.Duration) { cfg.adminIdle = d }

// AdminConns is how many admin connections the stack serves.
func AdminConns(s *Stack) int {
	s.admin.mu.Lock()
	defer s.admin.mu.Unlock()
	return len(s.admin.conns)
}

// AdminMaxConns is how many admin connections a stack serves at once.
const AdminMaxConns = adminMaxConns

// The admin endpoint's tests have a streaming op of their own, "ticks":
// 0, 1, 2 … a millisecond apart, until the stream ends; the op's return
// closes ended.
var ended = make(chan struct{}, 16)

// TickStreamEnded yields once per "ticks" stream that returned.
func TickStreamEnded() <-chan struct{} { return ended }

func init() {
	adminOps["ticks"] = adminOp{stream: true, run: func(ctx context.Context, _ *Stack, _ json.RawMessage, reply func(any) error) error {
		defer func() { ended <- struct{}{} }()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			if err := reply(n); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}
}
