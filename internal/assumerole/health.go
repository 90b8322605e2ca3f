package assumerole

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// health remembers the last refresh outcome.
type health struct {
	mu       sync.Mutex
	last     error
	failures int64
}

func (h *health) record(err error) {
	h.mu.Lock()
	h.last = err
	if err != nil {
		h.failures++
	}
	h.mu.Unlock()
}

// Register exposes the credentials' health as Prometheus metrics labelled
// with name (stream_role, lease_table_role, ...).
func (c *Credentials) Register(reg prometheus.Registerer, name string) {
	l := prometheus.Labels{"credentials": name}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventrelay_aws_credentials_healthy", Help: "1 when the last credentials refresh worked.", ConstLabels: l},
			func() float64 {
				if c.Healthy() != nil {
					return 0
				}
				return 1
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "eventrelay_aws_credentials_refresh_failures_total", Help: "Failed credentials retrievals (AssumeRole or the base chain).", ConstLabels: l},
			func() float64 {
				c.health.mu.Lock()
				defer c.health.mu.Unlock()
				return float64(c.health.failures)
			}),
	)
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Watch keeps credentials fresh without waiting for traffic: it retrieves
// them every interval through the cache (a no-op while they are valid, a
// refresh when they near expiry) and, after a failure, retries with
// backoff from 1s up to interval. Failures are logged without secrets and
// make Healthy report the error, so the service turns not ready instead of
// crashing. Watch returns when ctx ends.
func Watch(ctx context.Context, cache aws.CredentialsProvider, creds *Credentials, interval time.Duration, log zerolog.Logger) {
	delay := interval
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := cache.Retrieve(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if delay == interval {
				delay = time.Second
			} else {
				delay = min(delay*2, interval)
			}
			log.Error().Err(err).Str("role_arn", creds.role).Stringer("retry_in", delay).Msg("refreshing AWS credentials failed")
			continue
		}
		if delay != interval {
			log.Info().Str("role_arn", creds.role).Msg("AWS credentials refreshed again")
		}
		delay = interval
	}
}
