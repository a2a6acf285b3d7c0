// Package inline is the expert API of xdpnet: handlers that run on a
// poller's own goroutine, between its rounds, instead of on goroutines
// of their own behind net.Conn. `xdpnet serve` runs its echo, discard and
// chargen services this way, so an answer leaves in the same batch of
// frames as the request came, with no handoff between goroutines.
//
// A handler binds in sockapi.Config.OnPoller, once for each poller
// before it starts, and works on the poller's protocol tables directly:
// the tcp and udp packages' Table, Listener, Conn and Endpoint, whose
// methods are for the poller's goroutine only. This exposes the protocol
// cores on purpose, and with them their rules: a handler must not block,
// must not keep a table's objects for use on another goroutine, and
// should visit only the connections with news (those whose owner heard a
// notification), not all of them, on each round. Code that can live with
// a goroutine per connection should use sockapi's net.Conn instead.
package inline

import (
	"time"

	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// Poller is what an inline handler sees of a poller, in
// sockapi.Config.OnPoller: its protocol tables, to bind on, and a hook
// that runs it each round. Everything a handler does runs on the
// poller's goroutine, between the poller's own work, so it must not
// block.
type Poller interface {
	// TCP and UDP are the poller's protocol tables, to listen and bind
	// on.
	TCP() *tcp.Table
	UDP() *udp.Table
	// OnRound has f run on every poller round, with the poller's clock:
	// after the received frames went through the protocols and before
	// output is collected, so answers leave in the same batch. f must
	// not walk every connection, only those with news.
	OnRound(f func(now time.Duration))
}
