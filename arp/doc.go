// Package arp is the stack's ARP neighbour cache (RFC 826) for IPv4 over
// Ethernet: it maps next-hop addresses to MACs, answers requests for the
// stack's own addresses, and announces them when the stack starts.
//
// It is a sans-IO core with the contract every core offers (see
// internal/wire's Out): no goroutines, no clock, no syscalls; the caller
// passes the time in as now, a monotonic time.Duration since any epoch.
// Input takes a received packet; Output(now, b) runs the timers due and
// writes the next frame to send into b, an Ethernet payload it describes
// at wire.LayerLink (destination MAC and EtherType), until it reports
// nothing; Deadline says when it next has work. Resolve, its own, gives
// the MAC of a next hop to the caller's other packets.
//
// # Who owns what
//
// A Cache belongs to one goroutine, the poller of its NIC queue; nothing
// else may call it. Input reads the received packet and keeps nothing of
// it. Resolve copies a packet it queues, so the caller keeps its buffer. The
// MAC that Resolve returns aliases the cache's memory: use it before the
// next call to the cache.
//
// One loop iteration of the poller:
//
//	now := clock()
//	for each received frame of type wire.EtherTypeARP:
//		cache.Input(now, wire.ARP(eth.Payload()))
//	for each IPv4 packet to send to next hop nh:
//		switch mac, v := cache.Resolve(now, nh, pkt); v {
//		case arp.Send:        write the frame to mac
//		case arp.Unreachable: maybe ICMP host unreachable to the source
//		}                     // Queued and Dropped: nothing to do
//	while a transmit frame is free:
//		out, ok := cache.Output(now, frame[14:]) // announcements, replies, requests, released packets
//		if !ok { break }
//		write the Ethernet header (out.DstMAC, out.EtherType) and send frame[:14+out.Len]
//	sleep no later than cache.Deadline()
//
// # Neighbour states
//
// After RFC 1122 2.3.2.1 and Linux's NUD states, without DELAY. The main
// cycle is INCOMPLETE → REACHABLE → STALE → PROBE → REACHABLE; INCOMPLETE
// and PROBE end in FAILED when nobody answers.
//
//	state                event                                  next        action
//	(none)               Resolve                                INCOMPLETE  queue the packet; request at next Output
//	(none)               reply addressed to us                  REACHABLE
//	(none)               request addressed to us                STALE       reply
//	INCOMPLETE           request due                            INCOMPLETE  broadcast request
//	INCOMPLETE           MaxRetries+1 requests unanswered       FAILED      drop the queue (Unreachable); NextFailure
//	REACHABLE            ReachableTime since the confirmation   STALE       none (lazily: no timer)
//	STALE                Resolve                                PROBE       send to the old MAC; request at next Output
//	PROBE                request due                            PROBE       request, the first to the old MAC
//	PROBE                MaxRetries+1 requests unanswered       FAILED      NextFailure
//	FAILED               Resolve, FailedTime after the failure  INCOMPLETE  queue the packet; request at next Output
//	INCOMPLETE, FAILED   reply addressed to us from it          REACHABLE   release the queue
//	INCOMPLETE, FAILED   other ARP from it                      STALE       release the queue
//	not STATIC           reply to us from it, same MAC          REACHABLE   release the queue
//	PROBE                reply to us, new MAC, after LockTime   REACHABLE   release the queue
//	not STATIC           gratuitous ARP from it, new MAC        STALE       release the queue
//	REACHABLE            other ARP from it, new MAC             STALE       keep the old MAC (refused)
//	any                  AddStatic                              STATIC      release the queue
//
// INCOMPLETE: the first Output broadcasts a request; retries follow one
// RetransTime apart, and failure one more after the last (requests at 0,
// 1 and 2 s and failure at 3 s with the defaults, as Linux: a dial to a
// dead neighbour then fails with EHOSTUNREACH after about 3 s, where the
// owner learns of the failure from NextFailure). Packets wait in a queue of MaxQueue
// per neighbour and MaxQueueBytes in all; a full queue drops its oldest
// packet (RFC 1122 2.3.2.2 keeps the latest).
//
// REACHABLE: a reply addressed to us confirmed the MAC within
// ReachableTime. Entries turn STALE lazily when that time is up, so they
// need no timer.
//
// STALE: the MAC is known but unconfirmed: learnt from a request, from a
// packet not addressed to us, or confirmed too long ago. It is used as is,
// and the first use starts a PROBE.
//
// PROBE: RFC 1122's unicast poll: the MAC is still used while requests
// check it, at INCOMPLETE's pace. The first goes to the old MAC; the
// retries are broadcast (like Linux's mcast_resolicit), so that a neighbour
// whose MAC changed answers too: the XDP steering program passes us only
// ARP that targets our addresses, so its gratuitous ARP never reaches us.
// A reply to us makes the entry REACHABLE; silence makes it FAILED.
//
// FAILED: packets for the neighbour are refused as Unreachable until
// FailedTime has passed (RFC 1122 2.3.2.1 asks that a host not flood the
// link with requests for a dead neighbour); then the next packet starts a
// new resolution. ARP from the neighbour revives it as STALE.
//
// # Input rules
//
// RFC 826's merge rule: a packet from a sender in the table updates its
// entry, whoever the target is; a sender not in the table is added only
// when the packet is addressed to one of our addresses, so gratuitous ARP
// adds nobody (Linux's arp_accept=0). A known MAC is guarded against
// spoofing, more than Linux guards it (Cache.merge says how): it is
// replaced only by gratuitous ARP, or by a reply that answers our probe
// and comes more than LockTime (1 s, Linux's locktime) after the entry's
// last update. Other ARP with a new MAC is refused and counted
// (Stats.LockedOut, Stats.Unsolicited), and a REACHABLE entry goes STALE
// with its old MAC, so that its next use revalidates that MAC. The XDP
// steering program passes us only ARP that targets our addresses, so
// gratuitous ARP reaches the cache only from a caller that feeds it. A request for one of
// our addresses gets a reply, even from a sender we did not know. Ignored
// and counted: packets whose sender MAC is zero, multicast, broadcast or
// ours; whose sender IP is one of ours (a conflict, RFC 5227 2.4) or not a
// unicast IPv4 address. A probe (sender IP 0.0.0.0, RFC 5227 2.1.1) for our
// address is answered, and teaches nothing.
//
// # Bounded memory
//
// The table holds at most MaxEntries entries. A new one displaces the
// oldest FAILED entry, else the least recently updated one that is not
// static. Only the stack's own need (Resolve, AddStatic) may displace a
// neighbour that is not FAILED or STALE: a flood of unsolicited ARP can
// churn stale entries but cannot push out neighbours in use. Replies
// waiting for Output are bounded too (256; more are dropped and counted).
package arp
