// Package wire holds xdpnet's packet views: Ethernet II, ARP, IPv4, ICMPv4,
// UDP and TCP headers (TCP's options too) as []byte types with getters and setters over the bytes,
// plus the Internet checksum.
//
// The contract, as in smoltcp's wire module: a view's Check method
// validates lengths and the fields that give lengths; after it returns nil
// no accessor panics and no payload slice reaches past the bytes the view
// was built over. Checksums are verified separately (ChecksumValid), since
// callers count them apart. Errors are pre-allocated sentinels, because
// they are returned for hostile input on the hot path.
//
// Views never copy and never allocate; encoders (the *Fields types) write a
// header in place into a buffer the caller owns, typically a TX frame.
//
// Out and Layer are the output contract every protocol core offers the
// poller (out.go): they live here, in the leaf every core imports.
package wire
