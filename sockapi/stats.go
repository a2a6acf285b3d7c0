package sockapi

import (
	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// QueueStats are the counters of one queue: its link, its poller and the
// protocol cores the poller owns.
type QueueStats struct {
	Link   nic.Stats
	Poller fastpath.Stats
	ARP    arp.Stats
	IP     ip.Stats
	UDP    udp.Stats
	TCP    tcp.Stats
}

// Stats returns the counters of every queue, in queue order. The
// counters belong to the pollers, so each is read on its poller's
// goroutine (through the Do queue); after Close they are the final ones.
func (s *Stack) Stats() []QueueStats {
	out := make([]QueueStats, len(s.pollers))
	for q, p := range s.pollers {
		read := func() {
			out[q] = QueueStats{
				Link: p.Link().Stats(), Poller: p.Stats(), ARP: p.ARP().Stats(), IP: p.IP().Stats(),
				UDP: p.UDP().Stats(), TCP: p.TCP().Stats(),
			}
		}
		done := make(chan struct{})
		p.Do(func() { read(); close(done) })
		select {
		case <-done:
		case <-s.stopped:
			// The poller has stopped: it ran the read before it did
			// (done is closed) or never will, and its state is ours.
			if !isClosed(done) {
				read()
			}
		}
	}
	return out
}
