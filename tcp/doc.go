// Package tcp is xdpnet's TCP (RFC 9293), a sans-IO core: segments and a
// time value in, segments and deadlines out (see docs/DESIGN.md). No
// goroutines, no clock, no system calls.
//
// It offers the contract every core offers (internal/wire's Out): Input
// takes a received segment at now; Output(now, b) runs the timers due on
// the table's wheel, then writes the next segment into b and describes it
// at wire.LayerTransport (addresses, protocol), for the poller to write
// the IPv4 header, until it reports nothing; Deadline is the wheel's next
// timer. News for apps goes to a connection's or listener's Owner, a
// Notifier.
//
// # Ownership and driving
//
// A Table belongs to one poller goroutine and holds every connection and
// listener of its queue. The poller drives it:
//
//   - per received segment, Input(now, src, dst, tcpBytes): the checksum
//     is verified, the connection found by its 4-tuple (a hash map), else
//     a listener by local address and port, else a RST is queued. Input
//     copies what it keeps, so the frame is recycled at once.
//   - per loop iteration, Output(now, b) until it reports nothing: the
//     first call runs the timers due, and each writes one segment,
//     checksum included, straight into a transmit frame behind the IPv4
//     header. Because output is collected after a whole batch of input, one ACK
//     covers every segment of the batch; an ACK that may wait (at most
//     one full segment unacknowledged, delack.go) waits for a reply to
//     carry it or for the 40 ms delayed-ACK timer.
//   - the app side (Dial, Listen, Accept, CloseWrite, Close, Abort) runs
//     on the poller's goroutine; the data itself crosses to the app's
//     goroutine through a Stream (app.go), a send and a receive ring
//     shared lock-free, one goroutine on each side. NextReady tells the
//     owner which connections have news for their app.
//
// # What is implemented
//
// The RFC 9293 state machine with simultaneous open and close; segment
// acceptability exactly as 3.10.7.4; RFC 5961 challenge ACKs for RSTs and
// SYNs in window and for unacceptable ACKs, and the ACKs that answer
// unacceptable segments throttled as Linux throttles them (RFC 5961 7:
// one per 500 ms per connection, challenge ACKs also from a budget per
// table and second; ratelimit.go); flag combinations no TCP sends
// (SYN+FIN, SYN+RST, none of SYN, ACK, RST) dropped where Linux drops
// them; RFC 6528 initial sequence numbers; MSS and window scale
// options; listeners with SYN and accept queue limits, SYN cookies (RFC
// 4987 3.6, Linux's layout, cookie.go) once the SYN queue is full, or
// without them the oldest half-open connection evicted; a send buffer kept
// until acknowledged and a receive buffer that stores out-of-order data in
// place (memory bounded by the buffer, work by a range count), both
// auto-tuned as Linux's (autotune.go: the receive buffer to twice what the
// app reads per round trip, the send buffer to twice cwnd, each up to a
// maximum, back to the initial size when idle, within a memory limit a
// stack's tables share; SetRecvBuffer and SetSendBuffer pin a size),
// resized under the app's feet without locks (buffer.go); silly window
// avoidance on both sides and Nagle as an option; ACKs as Linux times
// them (delack.go: quick ACKs at the start, every second full segment,
// at once for out-of-order data and filled holes, else a 40 ms delayed
// ACK) and window updates when the window doubles or grows by two
// segments; PSH as Linux sets it (output.go's markPush); zero-window
// probing;
// RFC 6298 retransmission timeouts with Karn's rule and backoff, retry
// limits; congestion control (cc.go, recovery.go): the sender keeps at
// most min(cwnd, the peer's window) in flight, cwnd starting at RFC
// 6928's 10 segments, CUBIC (RFC 9438) with HyStart++ (RFC 9406) and
// Linux's ACK-train exit beside it in its first slow start by default or Reno (RFC 5681) per Config or
// connection, cwnd grown only while the flight uses more than half of it
// (congestion window validation, RFC 7661), limited transmit (RFC 3042), fast retransmit on
// three duplicate ACKs and NewReno's fast recovery with partial ACKs
// (RFC 6582), a reduction undone when the timestamp echo (RFC 3522) or
// D-SACKs (RFC 3708) show the retransmission needless, one segment after
// a timeout (RFC 5681 3.1's loss window), a restart after idle (4.1);
// FIN, half-close, RST on close with unread data; TIME-WAIT of 2×MSL with the RFC 6191 rule for
// a new SYN; RFC 6056 ephemeral ports. Timestamps (RFC 7323 3–5, off with
// Config.NoTimestamps): a keyed per-4-tuple offset on a millisecond clock,
// TS.Recent by the Last.ACK.sent rule, an RTT sample on every ACK of new
// data (retransmitted ones included), PAWS with its 24-day limit, a SYN
// with a newer TSval reopening TIME-WAIT, and data segments shrunk by the
// option (RFC 6691). SACK (RFC 2018, on unless Config.NoSACK; sack.go):
// blocks and D-SACKs (RFC 2883) sent for out-of-order and duplicate data,
// the peer's kept in a bounded scoreboard and in a record of every
// segment in flight (rack.go), from which RACK (RFC 8985 6) marks losses
// by time, with a reordering window that D-SACKs widen; recovery by SACK
// (RFC 6675: pipe, the holes resent first, what the peer holds never
// resent, after a timeout neither) with PRR (RFC 6937) sizing the
// sending; NewReno with a peer that does not speak SACK. A tail loss
// probe (RFC 8985 7, tlp.go) resends a lost last segment about two round
// trips after it left, not an RTO later. The probe and RACK's reorder
// timer each take the place of the retransmission timer on the
// connection's one timer (timer.go), the RTO's deadline kept aside in
// rtoAt and given back when they fire or stop, so the wheel holds one
// entry per connection for them whatever runs (the delayed-ACK and
// pacing timers are apart). Pacing (pacing.go, Config.Pacing or
// Conn.SetPacing, off by default) releases data at Linux's rate, 200 %
// of cwnd/SRTT in slow start and 120 % after, in bursts of max(2
// segments, 1 ms of data), the connection off the transmit queue until
// its pacing timer brings it back: at most one release a millisecond,
// so the wheel's 1 ms slots and a poller's park suffice
// (TestPacingReleasesAtRate checks the times; TestSimPacing in fastpath
// measures it off and on, and why it stays off with the 4 MiB send
// buffer default). The sent-segment records are kept
// in send order; RACK's walk of them stops at the first it cannot yet
// judge, so an ACK costs what it acknowledges or marks, not the flight
// (BenchmarkACKClean, BenchmarkSACKRecovery).
package tcp
