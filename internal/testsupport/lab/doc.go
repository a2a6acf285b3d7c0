// Package lab builds throwaway network labs for tests: two network
// namespaces joined by a veth pair, one end for xdpnet and one for the
// Linux kernel stack it talks to.
//
// Who owns what:
//
//   - The test owns the lab. New registers its teardown with tb.Cleanup, so
//     both namespaces are deleted when the test ends, passed or failed.
//     Deleting a namespace removes the veth end inside it, and with it the
//     other end. Anything the test opened inside a namespace (sockets, XDP
//     links, netlink handles) keeps that namespace alive in the kernel until
//     it is closed, so close such things in a Cleanup registered after New
//     (cleanups run last-in, first-out).
//   - Lab.Local is the end xdpnet binds to. Its kernel holds 198.18.0.1/24 so
//     a test can prove that traffic xdpnet does not own still reaches the
//     kernel. Lab.StackAddr (198.18.0.2) is reserved for xdpnet and is not
//     configured on any kernel interface.
//   - Lab.Peer is a plain Linux host at 198.18.0.3/24 on the other end. New
//     tunes its offloads for AF_XDP on the Local end (see Config.Mode).
//
// Addresses come only from 198.18.0.0/15 (RFC 2544 benchmarking space) and
// exist only inside the namespaces a lab made: no lab traffic leaves them.
// Both interfaces are created directly inside their namespaces, so they
// never appear in the caller's namespace, and IPv6 is disabled on them so no
// router solicitations or DAD probes appear on the wire unasked.
//
// Namespaces are named "xdpnet-lab-<pid>-<random>-l" and "...-p"; link names
// are "xl<random>" and "xp<random>" (14 characters, within IFNAMSIZ). The
// random part keeps parallel tests and parallel test processes apart. A test
// process that was killed cannot run its cleanups; the first New in a later
// process deletes lab namespaces whose creating process no longer exists.
// CheckNoLeaks in TestMain fails a test binary that leaves namespaces behind.
//
// New needs root. It skips the test, with the reason, only when the process
// is not root or the kernel lacks network namespaces or veth; on a root
// machine every other failure fails the test, so CI (which runs as root)
// cannot silently skip lab tests.
package lab
