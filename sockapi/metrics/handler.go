package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/xdpnet/xdpnet/sockapi"
)

// Handler serves s's counters alone in Prometheus's text format, from a
// registry of their own: for a program that wants /metrics and has no
// registry of its own (`xdpnet serve -http` mounts it there). A service
// with its own registry registers New(s) with it instead.
func Handler(s *sockapi.Stack) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(s))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
