package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/eventrelay/eventrelay/internal/replay"
	"github.com/eventrelay/eventrelay/internal/sink"
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
	// environ is the process environment (KEY=value), for config.CheckEnv.
	environ []string
}

func (f *commonFlags) register(fs *flag.FlagSet, getenv func(string) string, environ []string) {
	f.environ = environ
	fs.StringVar(&f.configPath, "config", getenv("EVENTRELAY_CONFIG"), "YAML configuration file (env EVENTRELAY_CONFIG); see 'consumer config example'")
	fs.StringVar(&f.logLevel, "log-level", "", "trace, debug, info, warn or error (overrides log.level)")
	fs.StringVar(&f.logFormat, "log-format", "", "auto, json or console (overrides log.format)")
	fs.StringVar(&f.httpAddr, "http-addr", "", `address of /healthz, /readyz and /metrics, e.g. 127.0.0.1:9090, or "off" (overrides http.addr; default :8080 for stream, off for replay and poll)`)
	fs.StringVar(&f.brokers, "brokers", "", "comma-separated Kafka brokers (overrides sink.kafka.brokers)")
	fs.StringVar(&f.sinkType, "sink", "", "kafka or stdout (overrides sink.type)")
}

// load reads the configuration and applies the flags over it; an
// EVENTRELAY_ variable that matches no field is an error.
func (f *commonFlags) load(getenv func(string) string) (config.Config, error) {
	c, err := config.Load(f.configPath, getenv)
	if err == nil {
		err = config.CheckEnv(f.environ)
	}
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

// exitFor maps a startup error to an exit code.
func exitFor(err error) int {
	var ce *app.ConfigError
	switch {
	case errors.As(err, &ce), errors.Is(err, replay.ErrInvalid), errors.Is(err, kinesis.ErrConsumerLimit):
		return exitUsage
	case errors.Is(err, assumerole.ErrAccessDenied):
		return exitCredentials
	case errors.Is(err, sink.ErrTopicMissing):
		return exitTopicMissing
	}
	return exitBadInput
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
