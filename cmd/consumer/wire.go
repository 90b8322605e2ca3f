package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/ops"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// commonFlags are the process flags every long-running command takes; they
// win over the configuration file and the environment.
type commonFlags struct {
	configPath string
	logLevel   string
	logFormat  string
	httpAddr   string
	brokers    string
	sinkType   string
}

func (f *commonFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.configPath, "config", getenv("EVENTRELAY_CONFIG"), "YAML configuration file (env EVENTRELAY_CONFIG); see 'consumer config example'")
	fs.StringVar(&f.logLevel, "log-level", "", "trace, debug, info, warn or error (overrides log.level)")
	fs.StringVar(&f.logFormat, "log-format", "", "auto, json or console (overrides log.format)")
	fs.StringVar(&f.httpAddr, "http-addr", "", `address of /healthz, /readyz and /metrics, e.g. 127.0.0.1:9090, or "off" (overrides http.addr; default :8080 for stream, off for replay and poll)`)
	fs.StringVar(&f.brokers, "brokers", "", "comma-separated Kafka brokers (overrides sink.kafka.brokers)")
	fs.StringVar(&f.sinkType, "sink", "", "kafka or stdout (overrides sink.type)")
}

// load reads the configuration and applies the flags over it.
func (f *commonFlags) load(getenv func(string) string) (config.Config, error) {
	c, err := config.Load(f.configPath, getenv)
	if err != nil {
		return c, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Log.Level, f.logLevel)
	set(&c.Log.Format, f.logFormat)
	set(&c.HTTP.Addr, f.httpAddr)
	set(&c.Sink.Type, f.sinkType)
	if f.brokers != "" {
		c.Sink.Kafka.Brokers = splitList(f.brokers)
	}
	return c, nil
}

func logger(c config.Config, w io.Writer) (zerolog.Logger, error) {
	level, format := c.Log.Level, c.Log.Format
	if level == "" {
		level = "info"
	}
	if format == "" {
		format = "auto"
	}
	return newLogger(w, format, level)
}

// startOps starts the operations server on http.addr, or on def when that
// is unset; "" (or "off") serves nothing. The registry and readiness work
// either way.
func startOps(ctx context.Context, c config.Config, def string, log zerolog.Logger) (*ops.Server, error) {
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

// buildSink makes the configured sink; a Kafka sink is checked against the
// brokers, retrying until they answer or ctx ends, and its static topics
// (DLQ, fallback, an untemplated topic) must exist or be created.
func buildSink(ctx context.Context, c config.Config, out io.Writer, log zerolog.Logger, reg prometheus.Registerer) (sink.Sink, error) {
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
		if ctx.Err() != nil {
			k.Close()
			return nil, err
		}
		log.Warn().Err(err).Dur("retry_in", delay).Msg("kafka not reachable yet")
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

// loadAWS loads the configuration for one role, watching its refreshes.
func loadAWS(ctx context.Context, c config.Config, role assumerole.Role, name string, log zerolog.Logger, reg prometheus.Registerer) (aws.Config, *assumerole.Credentials, error) {
	cfg, creds, err := assumerole.Load(ctx, c.AWS.Config, role)
	if err != nil {
		return cfg, nil, fmt.Errorf("aws.%s: %w", name, err)
	}
	creds.Register(reg, name)
	go assumerole.Watch(ctx, cfg.Credentials, creds, time.Minute, log.With().Str("credentials", name).Logger())
	return cfg, creds, nil
}

// exitFor maps a startup error to an exit code.
func exitFor(err error) int {
	var ce *configError
	switch {
	case errors.As(err, &ce):
		return exitUsage
	case errors.Is(err, assumerole.ErrAccessDenied):
		return exitCredentials
	case errors.Is(err, sink.ErrTopicMissing):
		return exitTopicMissing
	}
	return exitBadInput
}

// configError marks errors in the configuration (exit 2).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
