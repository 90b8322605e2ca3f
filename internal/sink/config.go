package sink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// KafkaConfig configures the Kafka sink. Zero fields take the defaults
// given in their comments (see DefaultKafkaConfig).
type KafkaConfig struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string `yaml:"brokers"`
	// Topic is a topic or a template over event fields ({source}, {type},
	// {name}, {tenant}, {category}; see Router), e.g.
	// "events.{source}.{category}". Default "events.{source}".
	Topic string `yaml:"topic"`
	// FallbackTopic receives events for which the template has an empty
	// placeholder. Default "events".
	FallbackTopic string `yaml:"fallback_topic"`
	// DLQTopic receives dead letters. Default "events.dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// ClientID identifies the producer to the brokers. Default "eventrelay".
	ClientID string `yaml:"client_id"`
	// BatchSize is the most messages per partition produce request. Default 1000.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes is the most bytes per partition produce request. Default
	// 1 MiB; must be at least MaxMessageBytes.
	BatchBytes int64 `yaml:"batch_bytes"`
	// Linger is how long a partition batch waits to fill. Deliver is
	// synchronous, so this is added latency at low rates. Default 5ms.
	Linger time.Duration `yaml:"linger"`
	// Compression: none, gzip, snappy, lz4 or zstd. Default lz4: less to
	// send and store for a little CPU here (the sink benchmark delivers more
	// events/s with it); consumers decompress it transparently.
	Compression string `yaml:"compression"`
	// MaxMessageBytes is the largest message sent; larger events go to the
	// DLQ (truncated). Match the broker's message.max.bytes. Default 1000000.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// RetryBackoffMin and RetryBackoffMax bound the delay between delivery
	// attempts while Kafka is failing. Defaults 100ms and 5s.
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// AllowAutoTopicCreation asks the brokers to create a missing topic
	// (honoured where the brokers set auto.create.topics.enable, Kafka's
	// default), as the Java producer and librdkafka do. Default true. With
	// false, or when the brokers refuse, a missing topic stops the run with
	// an error naming it.
	AllowAutoTopicCreation *bool      `yaml:"allow_auto_topic_creation"`
	TLS                    TLSConfig  `yaml:"tls"`
	SASL                   SASLConfig `yaml:"sasl"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`   // PEM bundle; default the system roots
	CertFile           string `yaml:"cert_file"` // client certificate for mTLS
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig enables SASL authentication.
type SASLConfig struct {
	// Mechanism: "" (off), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password is never printed; prefer PasswordFile.
	Password     secret.String `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
	// AllowPlaintext permits PLAIN without TLS (the password crosses the
	// network in clear text): only for isolated test networks.
	AllowPlaintext bool `yaml:"allow_plaintext"`
}

// DefaultKafkaConfig returns the defaults applied to zero fields.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{
		Topic: "events.{source}", FallbackTopic: "events", DLQTopic: "events.dlq", ClientID: "eventrelay",
		BatchSize: 1000, BatchBytes: 1 << 20, Linger: 5 * time.Millisecond, Compression: "lz4",
		MaxMessageBytes: 1_000_000, WriteTimeout: 10 * time.Second,
		RetryBackoffMin: 100 * time.Millisecond, RetryBackoffMax: 5 * time.Second,
	}
}

// WithDefaults fills zero fields from DefaultKafkaConfig, and an unset
// AllowAutoTopicCreation with true. config.Load applies it; applying it
// again changes nothing.
func (c KafkaConfig) WithDefaults() KafkaConfig {
	d := DefaultKafkaConfig()
	setDefault(&c.Topic, d.Topic)
	setDefault(&c.FallbackTopic, d.FallbackTopic)
	setDefault(&c.DLQTopic, d.DLQTopic)
	setDefault(&c.ClientID, d.ClientID)
	setDefault(&c.BatchSize, d.BatchSize)
	setDefault(&c.BatchBytes, d.BatchBytes)
	setDefault(&c.Linger, d.Linger)
	setDefault(&c.Compression, d.Compression)
	setDefault(&c.MaxMessageBytes, d.MaxMessageBytes)
	setDefault(&c.WriteTimeout, d.WriteTimeout)
	setDefault(&c.RetryBackoffMin, d.RetryBackoffMin)
	setDefault(&c.RetryBackoffMax, d.RetryBackoffMax)
	if c.AllowAutoTopicCreation == nil {
		on := true
		c.AllowAutoTopicCreation = &on
	}
	return c
}

// autoCreate is AllowAutoTopicCreation with its default.
func (c KafkaConfig) autoCreate() bool {
	return c.AllowAutoTopicCreation == nil || *c.AllowAutoTopicCreation
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate checks the configuration after defaults, naming the field at
// fault as it appears in the configuration file (sink.kafka.*).
func (c KafkaConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sink.kafka.%s: "+format, append([]any{field}, args...)...))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "must not be empty")
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			bad("brokers", "%q is not host:port", b)
		}
	}
	if _, err := NewRouter(c.Topic, c.FallbackTopic); err != nil {
		bad("topic", "%v", err)
	}
	if !ValidTopic(c.DLQTopic) {
		bad("dlq_topic", "%q is not a valid Kafka topic name", c.DLQTopic)
	}
	if c.BatchSize <= 0 {
		bad("batch_size", "must be positive, got %d", c.BatchSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"linger", c.Linger}, {"write_timeout", c.WriteTimeout}, {"retry_backoff_min", c.RetryBackoffMin}} {
		if d.v <= 0 {
			bad(d.name, "must be positive, got %s", d.v)
		}
	}
	if c.MaxMessageBytes < 1024 {
		bad("max_message_bytes", "must be at least 1024, got %d", c.MaxMessageBytes)
	}
	if c.BatchBytes < int64(c.MaxMessageBytes) {
		bad("batch_bytes", "must be at least max_message_bytes (%d), got %d", c.MaxMessageBytes, c.BatchBytes)
	}
	if _, err := codec(c.Compression); err != nil {
		bad("compression", "%v", err)
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		bad("retry_backoff_max", "must not be below retry_backoff_min")
	}
	errs = append(errs, c.validateSASL()...)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file must be set together")
	}
	return errors.Join(errs...)
}

// validateSASL checks sink.kafka.sasl.
func (c KafkaConfig) validateSASL() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sink.kafka.%s: "+format, append([]any{field}, args...)...))
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			bad("sasl.username", "must be set with sasl.mechanism %s", c.SASL.Mechanism)
		}
		if c.SASL.Password == "" && c.SASL.PasswordFile == "" {
			bad("sasl.password_file", "must be set (or sasl.password) with sasl.mechanism %s", c.SASL.Mechanism)
		}
		if strings.EqualFold(c.SASL.Mechanism, "PLAIN") && !c.TLS.Enabled && !c.SASL.AllowPlaintext {
			bad("sasl.mechanism", "PLAIN sends the password in clear text: enable sink.kafka.tls (or set sasl.allow_plaintext on an isolated test network)")
		}
	default:
		bad("sasl.mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.SASL.Mechanism)
	}
	return errs
}

// CheckFiles reads the files the sink reads when it starts (tls.ca_file,
// tls.cert_file and key_file when TLS is on, sasl.password_file when SASL
// is), as it reads them; errors name the setting.
func (c KafkaConfig) CheckFiles() error {
	var tlsErr error
	if (c.TLS.CertFile == "") == (c.TLS.KeyFile == "") { // else Validate says so, naming both
		_, tlsErr = c.TLS.build()
	}
	_, saslErr := c.SASL.build()
	return errors.Join(tlsErr, saslErr)
}

func codec(name string) (compress.Compression, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("want none, gzip, snappy, lz4 or zstd, got %q", name)
}

func (c TLSConfig) build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in for test clusters
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sink.kafka.tls.ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink.kafka.tls.ca_file: no certificate found in %s", c.CAFile)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("sink.kafka.tls.cert_file: cert_file and key_file must be set together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sink.kafka.tls.cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c SASLConfig) build() (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	pw := c.Password
	if c.PasswordFile != "" {
		var err error
		if pw, err = secret.FromFile("sink.kafka.sasl.password_file", c.PasswordFile); err != nil {
			return nil, err
		}
	}
	switch strings.ToUpper(c.Mechanism) {
	case "PLAIN":
		return plain.Mechanism{Username: c.Username, Password: pw.Reveal()}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, c.Username, pw.Reveal())
	default:
		return scram.Mechanism(scram.SHA512, c.Username, pw.Reveal())
	}
}
