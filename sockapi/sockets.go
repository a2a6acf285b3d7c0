package sockapi

import (
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// Socket is one of a stack's sockets as a queue's poller holds it: a
// line of `netstat -ano` or `ss -tuna`. A listener or UDP socket bound
// on every queue (as Listen and ListenPacket bind them) is a Socket per
// queue, as Linux lists SO_REUSEPORT sockets.
type Socket struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	// Local is the bound address, 0.0.0.0 for the wildcard; Remote the
	// peer, the zero AddrPort for a listener and an unconnected UDP
	// socket (netstat's 0.0.0.0:*).
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// State is TCP's state; a UDP socket's is as /proc/net/udp has it,
	// ESTABLISHED when connected and CLOSE when not (which netstat leaves
	// blank and ss calls UNCONN).
	State TCPState `json:"state"`
	// RecvQ and SendQ are netstat's Recv-Q and Send-Q: for a connection,
	// the bytes received and not yet read, and the bytes written and not
	// yet acknowledged; for a UDP socket, the payload bytes waiting each
	// way; for a listener, as Linux, the connections waiting to be
	// accepted (those of every queue handed to Accept's channel and not
	// taken, counted on each queue's line as against each queue's limit)
	// and the backlog.
	RecvQ int `json:"recv_q"`
	SendQ int `json:"send_q"`
	// Queue is the index of the queue whose poller owns the socket.
	Queue int `json:"queue"`
	// TCP is a TCP connection's state and counters, as Conn.Info gives
	// them; nil for a listener and a UDP socket.
	TCP *TCPInfo `json:"tcp,omitempty"`
}

// Sockets returns every socket of the stack: its TCP connections in
// every state (TIME_WAIT included), TCP listeners and UDP sockets, by
// queue, in no order within a queue. Each poller's are copied on its
// goroutine between its rounds, so reading holds a poller no longer
// than the copy, and translated on the caller's. After Close, the
// sockets the stack kept at the end.
func (s *Stack) Sockets() []Socket {
	var socks []Socket
	var infos []tcp.Info // of the connections, in their order in socks
	for q, p := range s.pollers {
		s.snapshot(p, func() { socks, infos = appendSockets(socks, infos, q, p) })
	}
	tis := make([]TCPInfo, len(infos))
	i := 0
	for k := range socks {
		if socks[k].Proto == "tcp" && socks[k].State != TCPListen {
			tis[i] = tcpInfo(infos[i])
			socks[k].TCP = &tis[i]
			i++
		}
	}
	return socks
}

// appendSockets appends queue q's sockets, and its connections' Infos,
// on p's goroutine.
func appendSockets(socks []Socket, infos []tcp.Info, q int, p *fastpath.Poller) ([]Socket, []tcp.Info) {
	// One allocation each for the connections, not a doubling's copies.
	socks, infos = slices.Grow(socks, p.TCP().Len()+1), slices.Grow(infos, p.TCP().Len())
	p.TCP().Listeners(func(l *tcp.Listener) {
		socks = append(socks, Socket{Proto: "tcp", Local: l.Addr(), State: TCPListen,
			RecvQ: l.Queued(), SendQ: l.Backlog(), Queue: q})
	})
	p.TCP().Conns(func(c *tcp.Conn) {
		st := c.Stream()
		socks = append(socks, Socket{Proto: "tcp", Local: c.LocalAddr(), Remote: c.RemoteAddr(),
			State: tcpState(c.State()), RecvQ: st.Readable(), SendQ: c.Unacked(), Queue: q})
		infos = append(infos, c.Info())
	})
	p.UDP().Endpoints(func(e *udp.Endpoint) {
		state := TCPClose
		if e.RemoteAddr().IsValid() {
			state = TCPEstablished
		}
		rcv, snd := e.Queued()
		socks = append(socks, Socket{Proto: "udp", Local: e.LocalAddr(), Remote: e.RemoteAddr(),
			State: state, RecvQ: rcv, SendQ: snd, Queue: q})
	})
	return socks, infos
}

// Neighbor is an entry of a queue's neighbour (ARP) cache, a line of
// `ip neigh`. Each queue keeps its own cache, so a neighbour is listed
// once for each queue that talked to it.
type Neighbor struct {
	IP  netip.Addr       `json:"ip"`
	MAC net.HardwareAddr `json:"-"` // nil while INCOMPLETE or FAILED; "mac" in JSON, as text
	// State is as `ip neigh` prints it: INCOMPLETE, REACHABLE, STALE,
	// PROBE, FAILED, or PERMANENT for a static entry.
	State string `json:"state"`
	// Age is the time since the neighbour was last confirmed, or since
	// its MAC or state last changed.
	Age time.Duration `json:"age"`
	// Queued is the packets waiting for its MAC.
	Queued int `json:"queued"`
	// Queue is the index of the queue whose cache holds it.
	Queue int `json:"queue"`
}

// MarshalJSON gives the MAC as text, as `ip neigh` prints it, where
// JSON would give net.HardwareAddr's bytes in base64; "" for none.
func (n Neighbor) MarshalJSON() ([]byte, error) {
	type plain Neighbor
	return json.Marshal(struct {
		plain
		MAC string `json:"mac"`
	}{plain(n), n.MAC.String()})
}

// UnmarshalJSON reads MarshalJSON's.
func (n *Neighbor) UnmarshalJSON(b []byte) error {
	type plain Neighbor
	var v struct {
		plain
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*n = Neighbor(v.plain)
	if v.MAC != "" {
		mac, err := net.ParseMAC(v.MAC)
		if err != nil {
			return err
		}
		n.MAC = mac
	}
	return nil
}

// Neighbors returns every queue's neighbour cache, by queue, in no order
// within a queue, copied on each poller between its rounds as Sockets'.
func (s *Stack) Neighbors() []Neighbor {
	var ns []Neighbor
	for q, p := range s.pollers {
		s.snapshot(p, func() {
			p.ARP().Entries(p.Now(), func(e arp.Entry) {
				ns = append(ns, Neighbor{IP: e.IP, MAC: e.MAC, State: neighborState(e.State),
					Age: e.Age, Queued: e.Queued, Queue: q})
			})
		})
	}
	return ns
}

// neighborState names s as `ip neigh` does: arp's names, but for the
// static entries, which Linux calls permanent.
func neighborState(s arp.State) string {
	if s == arp.Static {
		return "PERMANENT"
	}
	return s.String()
}
