// Package httpsvc is the HTTP service of `xdpnet serve -http`, shared by
// the command, the examples, the tests and the benchmarks so that all of
// them serve the same bytes:
//
//	GET  /bytes/N  N bytes of a deterministic pseudo-random stream, with
//	               its hex SHA-256 in the X-Content-SHA256 header
//	POST /sha256   the hex SHA-256 of the request body
//	GET  /         a short status page
//
// # The stream and its header
//
// The stream is ChaCha8 (math/rand/v2) under a fixed seed, so any client
// can check a download against Stream or Sum as well as against the
// header. The digest goes in a header, not a trailer, because curl -D,
// browsers and most clients show headers and ignore trailers, and a
// trailer would need chunked encoding where a Content-Length does fine.
// A header is sent before the body, so the handler generates the stream
// twice: once to hash it, once to send it. Hashing runs at roughly
// 0.5–0.8 GB/s on the lab machines (0.15–0.3 s before the first byte of
// 100 MiB); the digests of the last few sizes are cached, so a benchmark
// that asks for the same size again pays for it once.
package httpsvc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// SumHeader is the response header that carries the hex SHA-256 of a
// /bytes/N body.
const SumHeader = "X-Content-SHA256"

// MaxBytes bounds N in /bytes/N (64 GiB).
const MaxBytes = 64 << 30

// seed is the stream's fixed ChaCha8 key.
var seed = [32]byte([]byte("xdpnet httpsvc deterministic key"))

// Handler serves the service's routes. Its methods are safe for
// concurrent use.
type Handler struct {
	mux    http.ServeMux
	status func(w io.Writer)
	stats  struct{ requests, sent, hashed atomic.Int64 }
	sums   sumCache
}

// Stats count what a Handler did.
type Stats struct {
	Requests int64 // requests served, all routes
	Sent     int64 // bytes of /bytes/N bodies written
	Hashed   int64 // bytes of /sha256 bodies read
}

// New returns a handler. status, if set, writes the stack's part of the
// status page (addresses, queues, counters).
func New(status func(w io.Writer)) *Handler {
	h := &Handler{status: status}
	h.mux.HandleFunc("GET /bytes/{n}", h.bytes)
	h.mux.HandleFunc("POST /sha256", h.sha256)
	h.mux.HandleFunc("GET /{$}", h.index)
	return h
}

// ServeHTTP serves r.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.stats.requests.Add(1)
	h.mux.ServeHTTP(w, r)
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{Requests: h.stats.requests.Load(), Sent: h.stats.sent.Load(), Hashed: h.stats.hashed.Load()}
}

func (h *Handler) bytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 || n > MaxBytes {
		http.Error(w, fmt.Sprintf("want /bytes/N with 0 <= N <= %d", int64(MaxBytes)), http.StatusBadRequest)
		return
	}
	hd := w.Header()
	hd["Content-Type"] = contentType
	hd["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	hd[SumHeader] = []string{h.sums.sum(n)}
	if r.Method == http.MethodHead {
		return
	}
	g := getGen()
	defer putGen(g)
	for left := n; left > 0; {
		b := g.buf[:min(left, int64(len(g.buf)))]
		g.rng.Read(b)
		m, err := w.Write(b)
		h.stats.sent.Add(int64(m))
		if err != nil {
			return // the client went away
		}
		left -= int64(m)
	}
}

var contentType = []string{"application/octet-stream"}

func (h *Handler) sha256(w http.ResponseWriter, r *http.Request) {
	g := getGen()
	defer putGen(g)
	sum := sha256.New()
	n, err := io.CopyBuffer(sum, r.Body, g.buf[:])
	h.stats.hashed.Add(n)
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header()["Content-Type"] = textPlain
	fmt.Fprintf(w, "%x\n", sum.Sum(nil))
}

var textPlain = []string{"text/plain; charset=utf-8"}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = textPlain
	fmt.Fprintln(w, "xdpnet httpsvc: GET /bytes/N, POST /sha256")
	if h.status != nil {
		h.status(w)
	}
	s := h.Stats()
	fmt.Fprintf(w, "http: %d request(s), %d byte(s) sent, %d byte(s) hashed\n", s.Requests, s.Sent, s.Hashed)
}

// Stream returns the first n bytes of the stream /bytes/N serves.
func Stream(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seed), n)
}

// Sum is the hex SHA-256 of the first n bytes of the stream.
func Sum(n int64) string {
	g := getGen()
	defer putGen(g)
	h := sha256.New()
	for left := n; left > 0; {
		b := g.buf[:min(left, int64(len(g.buf)))]
		g.rng.Read(b)
		h.Write(b)
		left -= int64(len(b))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// gen is a stream generator and a buffer, pooled: a request allocates
// neither.
type gen struct {
	rng rand.ChaCha8
	buf [32 << 10]byte
}

var gens = sync.Pool{New: func() any { return new(gen) }}

func getGen() *gen {
	g := gens.Get().(*gen)
	g.rng.Seed(seed)
	return g
}

func putGen(g *gen) { gens.Put(g) }

// sumCache keeps the digests of the last sizes asked for.
type sumCache struct {
	mu   sync.Mutex
	sums map[int64]string
}

const sumCacheSize = 64

func (c *sumCache) sum(n int64) string {
	c.mu.Lock()
	s, ok := c.sums[n]
	c.mu.Unlock()
	if ok {
		return s
	}
	s = Sum(n) // not under the lock: concurrent first askers both hash
	c.mu.Lock()
	if c.sums == nil || len(c.sums) >= sumCacheSize {
		c.sums = make(map[int64]string, sumCacheSize)
	}
	c.sums[n] = s
	c.mu.Unlock()
	return s
}
