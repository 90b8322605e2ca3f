package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/ops"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// StartOps starts the operations server on http.addr, or on def when that
// is unset; "" (or "off") serves nothing. The registry and readiness work
// either way.
func StartOps(ctx context.Context, c config.Config, def string, log zerolog.Logger) (*ops.Server, error) {
	srv := ops.NewServer()
	if addr := c.HTTPAddr(def); addr == "" {
		log.Debug().Msg("operations endpoints off (set http.addr or --http-addr to serve /healthz, /readyz and /metrics)")
	} else {
		l, err := srv.Listen(addr)
		if err != nil {
			return nil, err
		}
		go srv.Serve(ctx, l, log)
	}
	return srv, nil
}

// BuildSink makes the configured sink; a Kafka sink is checked against the
// brokers, retrying until they answer or ctx ends, and its static topics
// (DLQ, fallback, an untemplated topic) must exist or be created. SASL
// configured against brokers without it is a ConfigError at once. The
// stdout sink writes to out.
func BuildSink(ctx context.Context, c config.Config, out io.Writer, log zerolog.Logger, reg prometheus.Registerer) (sink.Sink, error) {
	if c.SinkType() == "stdout" {
		return sink.NewStdout(out, reg), nil
	}
	k, err := sink.NewKafka(c.Sink.Kafka, log.With().Str("component", "sink").Logger(), reg)
	if err != nil {
		return nil, err
	}
	for delay := time.Second; ; delay = min(delay*2, 30*time.Second) {
		err := k.Check(ctx)
		if err == nil {
			if err := k.CheckTopics(ctx, log.With().Str("component", "sink").Logger()); err != nil {
				k.Close()
				return nil, err
			}
			return k, nil
		}
		if errors.Is(err, sink.ErrSASLHandshake) {
			k.Close()
			return nil, &ConfigError{Err: err} // the listener does not take SASL: waiting does not help
		}
		if ctx.Err() != nil {
			k.Close()
			return nil, err
		}
		log.Warn().Err(err).Stringer("retry_in", delay).Msg("kafka not reachable yet")
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

// LoadAWS loads the configuration for one role, watching its refreshes.
func LoadAWS(ctx context.Context, c config.Config, role assumerole.Role, name string, log zerolog.Logger, reg prometheus.Registerer) (aws.Config, *assumerole.Credentials, error) {
	cfg, creds, err := assumerole.Load(ctx, c.AWS.Config, role)
	if err != nil {
		return cfg, nil, fmt.Errorf("aws.%s: %w", name, err)
	}
	creds.Register(reg, name)
	go assumerole.Watch(ctx, cfg.Credentials, creds, time.Minute, log.With().Str("credentials", name).Logger())
	return cfg, creds, nil
}
