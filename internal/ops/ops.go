// Package ops serves the operations endpoints: /healthz (the process is
// alive: always 200), /readyz (200 only when the service does its job:
// 503 with the reason until then and while draining) and /metrics
// (Prometheus).
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Server is the operations HTTP server.
type Server struct {
	reg      *prometheus.Registry
	ready    atomic.Pointer[func() error]
	draining atomic.Bool
}

// NewServer returns a server with a fresh registry holding the Go and
// process collectors. Register the service's metrics on Registry().
func NewServer() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{reg: reg}
	notYet := func() error { return errors.New("starting") }
	s.ready.Store(&notYet)
	return s
}

// Registry is where metrics are registered.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetReady installs the readiness check: nil means ready.
func (s *Server) SetReady(check func() error) { s.ready.Store(&check) }

// Drain makes /readyz fail from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler routes the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.draining.Load() {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		if err := (*s.ready.Load())(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

// Listen binds addr; Serve then serves until ctx ends.
func (s *Server) Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr: listening on %s: %w", addr, err)
	}
	return l, nil
}

// Serve serves on l until ctx ends, then shuts down within 5s.
func (s *Server) Serve(ctx context.Context, l net.Listener, log zerolog.Logger) {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	log.Info().Str("addr", l.Addr().String()).Msg("serving /healthz, /readyz, /metrics")
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Msg("operations server stopped")
	}
}
