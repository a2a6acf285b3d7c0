// Package bench measures xdpnet against its baselines on the veth lab:
// the Linux kernel stack, and for the ring layer the asavie/xdp library.
// Every comparison runs both sides in one run on the same lab, because
// this machine is noisy and numbers from different runs do not compare.
package bench
