package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi/metrics"
)

// TestHandler: the handler serves the stack's counters in the text
// format, with their HELP, and a pipe stack's link counts with the
// queue label.
func TestHandler(t *testing.T) {
	a, _ := pipeStacks(t)
	rec := httptest.NewRecorder()
	metrics.Handler(a).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, "# HELP xdpnet_tcp_active_opens_total")
	assert.Contains(t, body, "# TYPE xdpnet_tcp_curr_estab gauge")
	assert.Regexp(t, `(?m)^xdpnet_link_rx_frames_total\{queue="0"\} \d+$`, body)
}
