// Package config loads eventrelay's pipeline configuration: one YAML file
// (unknown fields are errors), every field overridable by an environment
// variable named after its path (EVENTRELAY_SINK_KAFKA_BROKERS for
// sink.kafka.brokers), then validated by the package that owns each
// section, with errors that name the field. Defaults live with the owning
// packages (their WithDefaults) and Load applies them, so the loaded
// configuration holds the effective values.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/eventrelay/eventrelay/internal/poll"
	"github.com/eventrelay/eventrelay/internal/sink"
	yaml "go.yaml.in/yaml/v3"
)

// Config is the whole file.
type Config struct {
	Log    Log    `yaml:"log"`
	HTTP   HTTP   `yaml:"http"`
	AWS    AWS    `yaml:"aws"`
	Source Source `yaml:"source"`
	Sink   Sink   `yaml:"sink"`
}

// Log configures logging.
type Log struct {
	// Level: trace, debug, info (default), warn, error.
	Level string `yaml:"level"`
	// Format: auto (default: console on a terminal, else JSON), json, console.
	Format string `yaml:"format"`
}

// HTTP configures the operations endpoints (/healthz, /readyz, /metrics).
type HTTP struct {
	// Addr to listen on; "off" disables the server. Default ":8080" for
	// `consumer stream` (a long-running worker behind probes); off for
	// `replay` and `poll`, which are often run by hand next to each other
	// and must not collide on a port: set it to serve their metrics.
	Addr string `yaml:"addr"`
}

// StreamHTTPAddr is where `consumer stream` listens unless http.addr says
// otherwise.
const StreamHTTPAddr = ":8080"

// AWS holds the shared AWS settings and the role per group of clients.
type AWS struct {
	assumerole.Config `yaml:",inline"`
	// StreamRole is assumed for the Kinesis stream (typically the vendor's
	// cross-account role with an external ID).
	StreamRole assumerole.Role `yaml:"stream_role"`
	// LeaseTableRole is assumed for the DynamoDB lease table; empty uses
	// the base credentials (your own account).
	LeaseTableRole assumerole.Role `yaml:"lease_table_role"`
	// ReplayRole is assumed for S3 replay buckets; empty uses the base
	// credentials.
	ReplayRole assumerole.Role `yaml:"replay_role"`
}

// Source configures where events come from.
type Source struct {
	Kinesis kinesis.Config    `yaml:"kinesis"`
	Akeneo  poll.AkeneoConfig `yaml:"akeneo"`
	Fluent  poll.FluentConfig `yaml:"fluent"`
}

// Sink configures where events go.
type Sink struct {
	// Type: kafka (default) or stdout (dry run: JSON lines).
	Type  string           `yaml:"type"`
	Kafka sink.KafkaConfig `yaml:"kafka"`
}

//go:embed example.yaml
var example []byte

// Example is a commented configuration with every section, for
// `consumer config example`.
func Example() []byte { return example }

// Load reads path ("" for none), applies EVENTRELAY_* environment
// overrides from getenv, then the defaults, and returns the configuration
// unvalidated. An unknown field or a value of the wrong type in the file is
// an error naming its path. CheckEnv checks the environment's names.
func Load(path string, getenv func(string) string) (Config, error) {
	var c Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("reading configuration: %w", err)
		}
		if err := parse(data, &c); err != nil {
			return c, fmt.Errorf("parsing %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return c, err
	}
	return c.withDefaults(), nil
}

// parse decodes the file's first document into c after checking it
// against the fields, so errors name the field path.
func parse(data []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 {
		return nil // empty
	}
	if err := checkYAML(&doc); err != nil {
		return err
	}
	return doc.Decode(c)
}

// withDefaults applies each section's defaults (the owning package's
// WithDefaults) to the sections in use: the sink, the roles that are
// assumed and each configured source. A source left out stays zero, so it
// still reads as "not configured". The stream's worker_id stays empty: it
// is chosen per process when the worker starts.
func (c Config) withDefaults() Config {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.Sink.Type == "" {
		c.Sink.Type = "kafka"
	}
	if c.SinkType() == "kafka" {
		c.Sink.Kafka = c.Sink.Kafka.WithDefaults()
	}
	c.AWS.StreamRole = c.AWS.StreamRole.WithDefaults()
	c.AWS.LeaseTableRole = c.AWS.LeaseTableRole.WithDefaults()
	c.AWS.ReplayRole = c.AWS.ReplayRole.WithDefaults()
	if !reflect.ValueOf(c.Source.Kinesis).IsZero() {
		c.Source.Kinesis = c.Source.Kinesis.WithDefaults()
	}
	if !reflect.ValueOf(c.Source.Akeneo).IsZero() {
		c.Source.Akeneo = c.Source.Akeneo.WithDefaults()
	}
	if !reflect.ValueOf(c.Source.Fluent).IsZero() {
		c.Source.Fluent = c.Source.Fluent.WithDefaults()
	}
	return c
}

// Validate checks what every command needs: logging and the sink.
func (c Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.Log.Level) {
	case "", "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: want trace, debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: want auto, json or console, got %q", c.Log.Format))
	}
	if a := c.HTTP.Addr; a != "" && a != "off" {
		if _, port, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("http.addr: want host:port (:8080, 127.0.0.1:9090) or off, got %q", a))
		} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			errs = append(errs, fmt.Errorf("http.addr: port %q is not a number from 0 to 65535", port))
		}
	}
	switch c.SinkType() {
	case "kafka":
		errs = append(errs, c.Sink.Kafka.Validate())
	case "stdout":
	default:
		errs = append(errs, fmt.Errorf("sink.type: want kafka or stdout, got %q", c.Sink.Type))
	}
	return errors.Join(errs...)
}

// ValidateStream adds what `consumer stream` needs.
func (c Config) ValidateStream() error {
	return errors.Join(c.Validate(), c.Source.Kinesis.Validate(),
		c.AWS.StreamRole.Validate("aws.stream_role"), c.AWS.LeaseTableRole.Validate("aws.lease_table_role"))
}

// CheckFiles reads the files that the given sections name (sink.kafka,
// aws.stream_role, aws.lease_table_role, aws.replay_role, source.akeneo,
// source.fluent) as the commands read them when they start: the *_file
// secrets and the TLS files. A file that cannot be read, is empty or holds
// more than one line is an error naming the setting, so `config check`
// catches what the command would reject.
func (c Config) CheckFiles(sections ...string) error {
	var errs []error
	for _, s := range sections {
		switch s {
		case "sink.kafka":
			if c.SinkType() == "kafka" {
				errs = append(errs, c.Sink.Kafka.CheckFiles())
			}
		case "aws.stream_role":
			errs = append(errs, c.AWS.StreamRole.CheckFiles(s))
		case "aws.lease_table_role":
			errs = append(errs, c.AWS.LeaseTableRole.CheckFiles(s))
		case "aws.replay_role":
			errs = append(errs, c.AWS.ReplayRole.CheckFiles(s))
		case "source.akeneo":
			errs = append(errs, c.Source.Akeneo.CheckFiles())
		case "source.fluent":
			errs = append(errs, c.Source.Fluent.CheckFiles())
		default:
			errs = append(errs, fmt.Errorf("checking files: unknown section %q", s))
		}
	}
	return errors.Join(errs...)
}

// SinkType is the sink type with its default.
func (c Config) SinkType() string {
	if c.Sink.Type == "" {
		return "kafka"
	}
	return strings.ToLower(c.Sink.Type)
}

// HTTPAddr is the listen address, def when http.addr is unset ("" when
// disabled).
func (c Config) HTTPAddr(def string) string {
	switch c.HTTP.Addr {
	case "":
		return def
	case "off":
		return ""
	}
	return c.HTTP.Addr
}

// Redacted renders the configuration as YAML with secrets replaced.
func (c Config) Redacted() ([]byte, error) {
	return yaml.Marshal(c)
}
