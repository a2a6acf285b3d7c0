package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
)

// HTTP is a target that GETs one URL with HTTP/1.1 keep-alive, as wrk
// does; a response other than 2xx or 3xx fails its request.
type HTTP struct {
	request []byte
}

// NewHTTP returns the target for rawURL, http://host[:port]/path.
func NewHTTP(rawURL string) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%q: want http://host[:port]/path", rawURL)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "xdpnet-load")
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return nil, err
	}
	return &HTTP{request: b.Bytes()}, nil
}

// NewRequester implements Target.
func (h *HTTP) NewRequester(c net.Conn) Requester {
	cr := &countingReader{r: c}
	return &httpRequester{c: c, cr: cr, br: bufio.NewReaderSize(cr, 32<<10), request: h.request}
}

type httpRequester struct {
	c       net.Conn
	cr      *countingReader
	br      *bufio.Reader
	request []byte
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

func (h *httpRequester) Do() (int, bool, error) {
	if _, err := h.c.Write(h.request); err != nil {
		return 0, false, err
	}
	// One request at a time, so what the reader takes in until the body
	// ends is this response's.
	before := h.cr.n - h.br.Buffered()
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return 0, false, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return h.cr.n - h.br.Buffered() - before, !resp.Close, nil
}

// Echo is a target that sends Size bytes and reads them back (the echo
// service, RFC 862), checking they are the same.
type Echo struct {
	payload []byte
}

// maxEchoSize bounds an echo request: the request is written whole
// before its echo is read, so it must fit the buffers of the path (the
// server's receive and send, ours to receive: 128 KiB each at least on
// Linux and xdpnet), or both ends would wait on each other.
const maxEchoSize = 64 << 10

// NewEcho returns the echo target for size-byte requests.
func NewEcho(size int) (*Echo, error) {
	if size < 1 || size > maxEchoSize {
		return nil, fmt.Errorf("echo size %d: want 1 B to %d KiB", size, maxEchoSize>>10)
	}
	p := make([]byte, size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return &Echo{payload: p}, nil
}

// NewRequester implements Target.
func (e *Echo) NewRequester(c net.Conn) Requester {
	return &echoRequester{c: c, payload: e.payload, back: make([]byte, len(e.payload))}
}

type echoRequester struct {
	c             net.Conn
	payload, back []byte
}

// errEchoDiffers is an echo that came back changed.
var errEchoDiffers = errors.New("echo differs from the request")

func (e *echoRequester) Do() (int, bool, error) {
	if _, err := e.c.Write(e.payload); err != nil {
		return 0, false, err
	}
	n, err := io.ReadFull(e.c, e.back)
	if err != nil {
		return n, false, err
	}
	if !bytes.Equal(e.back, e.payload) {
		return n, false, errEchoDiffers
	}
	return n, true, nil
}
