// Package steer is the XDP program that decides, per received frame, what
// goes to xdpnet and what stays with the kernel, on the same interface.
//
// A frame is xdpnet's when it is
//
//   - IPv4 with a destination address of the stack (the address map, which
//     AddAddr and RemoveAddr change at run time), and, when the Config has
//     rules, matches one of them (protocol and destination port range); or
//   - ARP for IPv4 over Ethernet whose target protocol address is one of
//     the stack's addresses (requests for it and replies to its requests).
//
// Such a frame is redirected with bpf_redirect_map to the AF_XDP socket
// registered for the queue it arrived on (Register); if that queue has no
// socket, the frame is passed to the kernel. Every other frame, and every
// frame too short or malformed to classify, is passed (XDP_PASS), so the
// host's own traffic keeps working on a NIC xdpnet shares.
//
// The program is assembled in Go with cilium/ebpf's asm package: no C
// compiler at build or test time. Rules are compiled into the program as
// constants; addresses live in a BPF hash map.
//
// Ownership and lifetime: Attach attaches through a bpf_link, which the
// kernel detaches when its last file descriptor closes. The Program owns
// that descriptor, so the program leaves the interface on Close or when the
// process exits for any reason, SIGKILL included; nothing needs a signal
// handler. Keep the Program reachable while it should steer: cilium/ebpf
// closes the descriptors of objects the garbage collector frees, so losing
// every reference to a Program detaches it at some later collection. Attach never replaces an XDP program it did not attach: it
// returns ErrForeignProgram unless Config.Replace asks to remove a program
// attached through netlink. A bpf_link of another process cannot be
// removed by anyone but its owner: for it Attach returns a LinkHeldError,
// which names the processes that hold the link.
package steer
