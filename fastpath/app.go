package fastpath

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/mpsc"
	"github.com/xdpnet/xdpnet/udp"
)

// Do runs fn on the poller's goroutine at the start of its next round,
// and wakes the poller if it sleeps. Any goroutine may call it; it
// allocates one node, so it is for control operations (dial, listen,
// close, options), not data.
func (p *Poller) Do(fn func()) {
	p.tasks.Push(&mpsc.Node[func()]{Value: fn})
	p.Wake()
}

// Kickable is the poller's side of something an app goroutine shares
// rings with: a *tcp.Conn or a *udp.Endpoint.
type Kickable interface {
	// AppActivity runs on the poller when the app kicked: data to send,
	// or room read free.
	AppActivity()
}

// Kick tells the poller that the app wrote into or read from the Stream
// of n.Value (a TCP connection's or a UDP endpoint's): it sends the new
// data, or a window update, at its next round. Any goroutine may call
// it; a node already queued costs one atomic compare-and-swap and nothing
// else, and no allocation ever.
func (p *Poller) Kick(n *mpsc.Node[Kickable]) {
	if p.kicks.Push(n) {
		p.Wake()
	}
}

// Wake makes a sleeping poller run a round now. It costs one atomic load
// when the poller is awake.
func (p *Poller) Wake() {
	if p.sleeping.Load() && p.sleeping.CompareAndSwap(true, false) && p.parker != nil {
		p.parker.Wake()
	}
}

// Now is the time of the poller's current or last round, on its own
// clock; only the poller's goroutine (a Do function) may call it.
func (p *Poller) Now() time.Duration { return p.now }

// OnRound adds fn to what runs on every round: the one inline hook. It
// runs after the received frames went through the protocol cores, the
// due timers ran and the owners of connections with news heard Notify,
// and before output is collected, so services that answer from the
// poller's endpoints (echo) answer in the same batch, and app layers
// that move data in bulk each round (UDP sockets) do it there. It must
// not walk every connection: a round's work follows the connections with
// news (see tcp.Notifier and udp.Notifier). Call it before the poller runs, or on its
// goroutine (in a Do function).
func (p *Poller) OnRound(fn func(now time.Duration)) { p.hooks = append(p.hooks, fn) }

// takeAppWork runs the functions and kicks the app goroutines queued.
func (p *Poller) takeAppWork() {
	if !p.tasks.Empty() {
		p.tasks.TakeAll(p.runTask)
	}
	if !p.kicks.Empty() {
		p.kicks.TakeAll(p.kickConn)
	}
}

func (p *Poller) runTask(n *mpsc.Node[func()]) { n.Value() }

func (p *Poller) kickConn(n *mpsc.Node[Kickable]) { n.Value.AppActivity() }

// notifyApps tells the owners of the connections, listeners and
// endpoints with news (their Owner, the core's Notifier), notes whether
// that woke a goroutine (p.woke), and reports whether it told any. The
// calls go through the cores' own interfaces: no type assertion.
func (p *Poller) notifyApps() (told bool) {
	for {
		c, ok := p.tcp.NextReady()
		if !ok {
			break
		}
		if c.Owner != nil {
			told = true
			p.woke = c.Owner.Notify() || p.woke
		}
	}
	for {
		l, ok := p.tcp.NextAcceptable()
		if !ok {
			break
		}
		if l.Owner != nil {
			told = true
			p.woke = l.Owner.Notify() || p.woke
		}
	}
	for _, t := range [...]*udp.Table{p.udp, p.ping} {
		for {
			e, ok := t.NextNews()
			if !ok {
				break
			}
			if e.Owner != nil {
				told = true
				p.woke = e.Owner.Notify() || p.woke
			}
		}
	}
	return told
}

// pendingAppWork reports whether app goroutines queued work.
func (p *Poller) pendingAppWork() bool {
	return !p.tasks.Empty() || !p.kicks.Empty() || p.handoversWaiting()
}
