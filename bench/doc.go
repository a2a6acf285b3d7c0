// Command bench measures xdpnet against the Linux kernel on a veth lab it
// builds: two network namespaces joined by a veth pair, addresses in
// 198.18.0.0/15, deleted at the end whatever ends the run (a failed
// workload, SIGINT or SIGTERM); or on two hosts (see Two hosts). It
// needs root.
//
//	go run ./bench                       # every workload, 2 s a cell, 3 repetitions
//	go run ./bench -only tcp-rr -count 1 # the TCP request/response workloads
//	go run ./bench -skip idle,xdpnet     # everything but idle, on the kernel only
//	go run ./bench -list                 # the workloads and systems
//	go run ./bench -quick                # a smoke test: -count 1 -time 1s
//	go run ./bench -plot plots           # also PNG plots into ./plots
//	go run ./bench -check out.json       # did every cell of a -json run give a number?
//
// Two hosts, each with a NIC on a benchmark network, root on both:
//
//	bench -serve                                           # the peer: clients on demand, port 9207
//	bench -iface eth1 -addr 198.18.0.2/24 -peer 198.18.0.1 # the xdpnet host: the run
//
// Every workload runs on each system in the same run, on the same veth
// pair, -count times, the systems' order alternating between
// repetitions. A system is a network stack serving the workloads'
// servers in this process, on the lab's Local end: "kernel" (Go's net on
// the kernel's sockets, with xdpnet's steering program attached and
// passing everything), "kernel-no-xdp" (without it), "kernel-offloads"
// (the kernel on a veth pair and namespaces of its own with transmit
// checksums, TSO and GSO on at both ends, which AF_XDP's pair cannot
// have: the kernel at its best, for the bulk workloads only; its lab
// lives from its first cell to the end of the run), "xdpnet" (the same
// Go servers on sockapi's net.Conns), "xdpnet-inline" (the same stack's
// TCP echo, discard and chargen that run on the poller itself, package
// sockapi/inline: no goroutine between the wire and the service; they
// have no UDP), "asavie" (asavie/xdp v0.3.3, the ring layer xdp/ is
// compared to: the rxdrop workload only, where "xdpnet" is xdp/'s socket
// used directly and no system's stack is up) or "gvisor" (the same servers on
// gVisor's netstack, bench/gvisorpeer, over its AF_XDP endpoint; every
// connection of it must make progress within 5 s or its cell fails). A
// system's stack is up only while its cell runs, but gVisor's: this
// version cannot be torn down and keeps its queue bound, so it runs on a
// veth pair and namespaces of its own from its first cell to the end of
// the run, idle while the others run. Every client is a process of its
// own in the peer's namespace on the peer's kernel: this binary,
// re-executed. A workload that needs what a system has not (UDP of
// xdpnet-inline) has no cell there: the table shows "—".
//
// Every system moves the same bytes, and they are checked: an echo must
// return each request byte for byte, a chargen stream must be RFC 864's
// pattern (as the poller's chargen sends it) at every byte, and a discard
// server's count of bytes (TCP) must equal what the client wrote; a UDP
// discard server counts datagrams, and its count is the udp-pps
// workloads' figure (pps, what the system received per second of
// sending; loss-%, the share of what the client sent that it did not
// get; sent-pps, the client's rate: sendmmsg, 64 datagrams a call). A
// mismatch fails the cell.
//
// -quick is a preset for a short run, -count 1 -time 1s (either given
// explicitly wins): the whole table in well under 2 minutes on a 2-vCPU
// machine, to see that every cell runs, not for figures to compare.
//
// -only and -skip take comma-separated regular expressions (RE2,
// unanchored), each matched against the workload's name, the system's
// name and "workload/system"; an expression that matches nothing is an
// error.
//
// The output: a header (kernel, CPUs, the link's driver, xdpnet's XDP
// mode and copy or zero-copy, queues, MTU, the kernel's congestion
// control, the hosts, Go, the date), a progress line per cell (rewritten in place
// on a terminal), and a Markdown table: a row per workload and metric, a
// column per system with the median over the repetitions (and min–max),
// the ratios xdpnet ÷ kernel, xdpnet ÷ gvisor and xdpnet ÷ asavie of the medians, and whether higher or lower
// is better. A cell that failed says "failed: <reason>" and has no
// figure; a cell that does not apply to its system says "—". Every workload has CPU rows, in seconds over the cell:
//
//   - cpu-server-s: this process (getrusage, every thread): the system's
//     servers, xdpnet's pollers, and for the kernel the system calls of
//     its Go servers (with the receive processing the kernel does inside
//     them);
//   - cpu-client-s: the peer's client process, user and system (on veth,
//     a sender's system call carries the receiver's softirq work too);
//   - cpu-softirq-s: softirq time of all CPUs from /proc/stat, the whole
//     machine's: the kernel's receive processing wherever it ran, whoever
//     caused it (other processes' traffic included).
//   - cpu-other-s: every other process's CPU time: /proc/stat's user,
//     nice and system time of all CPUs less this process's and the
//     client's. A cell during which it passed a tenth of a CPU gets a
//     warning line ("warning: other processes used N % of a CPU during
//     W on S"), repeated under the table and in the JSON's "warnings":
//     on this 2-vCPU lab a second busy process moves latency 2-5×.
//
// # Two hosts
//
// bench -serve [-listen ADDR:PORT] makes this host the peer of a
// two-host run: it sets the clients' sysctls (the whole local port range
// and net.ipv4.tcp_tw_reuse, as on the lab's peer), listens on ADDR:PORT
// (default :9207, every address) and runs each client the driver asks
// for as a process of its own on this host, until SIGINT or SIGTERM
// (exit 0), which also end the clients running. There is no
// authentication: run it on a benchmark network only. It runs kernel
// clients only, towards an address, with bounded parameters; a bad
// request gets an error status. At most 4 control connections are
// served at once; a request line is at most 4 KiB and must come within
// 5 s.
//
// rxdrop floods the lab's Local end from an AF_XDP socket on its Peer
// end, a thread of this process opened at the first rxdrop cell and
// closed at the end of the run (a queue freed by closing an AF_XDP socket
// cannot be bound again at once); its cpu-server-s includes that thread.
//
// bench -iface IF -addr PREFIX -peer HOST[:PORT] drives the run on IF of
// this host, in this namespace, with no lab: the kernel systems serve on
// IF's own (first) IPv4 address, xdpnet at PREFIX, which must be another
// address of IF's subnet, and every client runs on the peer, through its
// bench -serve (port 9207 unless given). gVisor and kernel-offloads are
// left out: each runs on a lab of its own; so is rxdrop: its sender needs the lab's peer end. The header's "hosts" line says "lab" or "two hosts:
// peer HOST:PORT", as does the JSON's machine "peer" (absent in the lab).
// With two hosts, cpu-client-s is the peer's client process, and
// cpu-softirq-s and cpu-other-s are this host's alone (the client's CPU
// is left out of other only when the peer turns out to be this machine,
// by its boot id: the lab run as two hosts).
//
// The control protocol, one TCP connection per client: the driver sends
// one line, {"client": <the client's spec>} as JSON ({} asks only whether
// the peer answers); the peer answers with the client's own output lines
// as they come (client-progress:, client-latency:, client-cc:, client:),
// then one "serve-status: " line, {"boot_id", "cpu_ns", "stderr",
// "error"} as JSON, and closes. Either end closing the connection ends
// the client.
//
// The exit code is 0 when every cell ran, 1 when one failed, 2 for bad
// flags or names, 3 when the lab or a system cannot be set up (not root,
// an interface without native XDP, a peer that does not answer within
// 3 s), 130 after a signal.
//
// -check FILE reads a -json FILE and exits 0 when every workload ×
// system cell the run selected has a number in each of the workload's
// metric rows (the CPU rows aside), 1 with a line per missing or failed
// cell (or an interrupted run), 2 when FILE cannot be read. It never
// judges a figure: it is CI's smoke check after -quick, and needs no
// root.
//
// # Plots
//
// -plot DIR draws the run as PNGs (800 × 500, pure Go, gonum.org/v1/plot)
// into DIR: <workload>-latency-cdf.png for each workload that times
// transactions (tcp-rr-*, udp-rr-*, tcp-crr), the CDF of every
// transaction's latency over the repetitions, a line per system, on a
// log x axis; and throughput-gbit-s.png, throughput-trans-s.png,
// throughput-conns-s.png, throughput-pps.png and throughput-mpps.png, a
// bar per system and workload (the median), of the systems the
// workloads apply to. A
// failed cell draws nothing: a CDF names it in its title, a bar chart in
// its legend ("xdpnet (failed: tcp-send-4)").
//
// # JSON
//
// -json FILE writes the run as one object (schema 1; fields are added,
// never renamed):
//
//	{
//	  "schema": 1,
//	  "machine": {"kernel", "cpus", "cpu_model", "link", "nic_driver",
//	              "xdp_mode", "zero_copy", "queues", "mtu",
//	              "congestion_control", "kernel_socket_cc",
//	              "peer" (two hosts only), "go", "date" (RFC 3339)},
//	  "settings": {"time_s", "count", "only", "skip", "quick"},
//	  "systems": ["kernel", "xdpnet"],
//	  "rows": [{
//	    "workload": "tcp-rr-1", "metric": "trans/s",
//	    "better": "higher" | "lower",
//	    "cells": {"<system>": {"median", "min", "max", "samples": [...]}
//	                        | {"failed": "<reason>"}
//	                        | {"not_applicable": true}},
//	    "ratio": xdpnet median ÷ kernel median (absent if either is missing),
//	    "ratio_gvisor": xdpnet median ÷ gvisor median (likewise),
//	    "ratio_asavie": xdpnet median ÷ asavie median (likewise: rxdrop)
//	  }],
//	  "latency": [{"workload", "system",
//	               "buckets": [[ns, count], ...]}],
//	  "warnings": ["other processes used N % of a CPU during W on S: …"],
//	  "interrupted": true (only when a signal ended the run)
//	}
//
// "latency" holds, for each cell that times transactions (the
// request/response workloads and tcp-crr) and did not fail, its
// latencies over every repetition: the non-empty buckets of a log-linear
// histogram (internal/latency, each value within 1/128 of the true one),
// in increasing order. Percentiles in "rows" come from the sorted
// samples of each repetition, not from these buckets.
//
// The go-test benchmarks (go test -bench . ./bench/) call the same
// workload bodies; those not ported to the command yet run only there.
package main
