// Package tcp is xdpnet's TCP, a sans-IO core: segments and a time value
// in, segments and deadlines out (see ../shared/DESIGN.md). It holds so
// far the arithmetic every part of it stands on: sequence numbers modulo
// 2^32 (RFC 9293 3.4) and initial sequence numbers (RFC 6528). The
// connection state machine comes with the TCP issue.
package tcp
