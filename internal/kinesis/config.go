package kinesis

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
)

// Config configures the stream worker. Zero fields take the defaults in
// their comments (DefaultConfig).
type Config struct {
	// Stream is the Kinesis stream name. Required.
	Stream string `yaml:"stream"`
	// Application names the consumer; it is the lease table's name unless
	// LeaseTable is set. Default "eventrelay".
	Application string `yaml:"application"`
	// LeaseTable is the DynamoDB table of shard leases and checkpoints,
	// created on demand (PAY_PER_REQUEST) if missing. Default Application.
	LeaseTable string `yaml:"lease_table"`
	// WorkerID identifies this worker in the lease table. Default
	// hostname plus a random suffix.
	WorkerID string `yaml:"worker_id"`
	// InitialPosition for shards without a checkpoint: TRIM_HORIZON
	// (default: nothing retained is skipped), LATEST or AT_TIMESTAMP.
	InitialPosition string `yaml:"initial_position"`
	// InitialTimestamp for AT_TIMESTAMP.
	InitialTimestamp time.Time `yaml:"initial_timestamp"`
	// MaxRecords per GetRecords call. Default 10000 (the Kinesis maximum).
	MaxRecords int `yaml:"max_records"`
	// IdleBetweenReads is the pause after an empty read. Default 200ms,
	// which bounds latency at low rates.
	IdleBetweenReads time.Duration `yaml:"idle_between_reads"`
	// ShardSyncInterval is how often shards and leases are re-listed (new
	// shards after resharding, leases of failed workers). Default 10s.
	ShardSyncInterval time.Duration `yaml:"shard_sync_interval"`
	// FailoverTime is how long a lease lives without renewal before another
	// worker may take it. Default 10s.
	FailoverTime time.Duration `yaml:"failover_time"`
	// MaxLeasesForWorker caps the shards one worker holds (0: no cap).
	// With BalanceLeases it stays a cap: the worker's share is at most it,
	// and the others share the rest.
	MaxLeasesForWorker int `yaml:"max_leases_for_worker"`
	// LeaseStealing lets a worker take leases from busier workers so the
	// shards even out across replicas (the library's own mechanism, which
	// moves leases back and forth). Default off.
	LeaseStealing bool `yaml:"lease_stealing"`
	// BalanceLeases evens out the shards across the workers sharing the
	// lease table: a worker takes leases up to its fair share (open
	// shards / live workers, rounded up or down) and one above its share
	// hands leases over gracefully (delivered and checkpointed first) to
	// one below; an even spread stays put. Default true, or false when
	// LeaseStealing is on (the two cannot be combined).
	BalanceLeases *bool `yaml:"balance_leases"`
	// EnhancedFanOut reads with SubscribeToShard (dedicated throughput per
	// consumer) instead of polling; ConsumerName names the registration.
	EnhancedFanOut bool   `yaml:"enhanced_fan_out"`
	ConsumerName   string `yaml:"consumer_name"`
	// Format of the records' data. Default onewelcome.
	Format envelope.Format `yaml:"format"`
	// MaxEventSize is the decoder's per-event limit. Default 1 MiB.
	MaxEventSize int `yaml:"max_event_size"`
	// DrainTimeout bounds a graceful stop: finish delivering the batch in
	// hand, checkpoint, release leases. Default 30s. It is a hard bound:
	// when a dependency stalls, the worker gives up on it and exits.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// ProgressTimeout is how long a shard may make no progress (no read
	// from Kinesis, or a batch not delivered and checkpointed) before it is
	// reported: logged with what it waits on, readiness turns 503, and
	// eventrelay_kinesis_seconds_since_progress shows it. Default 60s.
	ProgressTimeout time.Duration `yaml:"progress_timeout"`
}

// DefaultConfig returns the defaults applied to zero fields.
func DefaultConfig() Config {
	return Config{
		Application: "eventrelay", InitialPosition: "TRIM_HORIZON", MaxRecords: 10000,
		IdleBetweenReads: 200 * time.Millisecond, ShardSyncInterval: 10 * time.Second,
		FailoverTime: 10 * time.Second, Format: envelope.FormatOneWelcome,
		MaxEventSize: envelope.DefaultMaxEventSize, DrainTimeout: 30 * time.Second,
		ProgressTimeout: time.Minute,
	}
}

// WithDefaults fills zero fields from DefaultConfig (LeaseTable and
// ConsumerName from Application), all but WorkerID, which is chosen per
// process when the worker starts. config.Load applies it; applying it
// again changes nothing.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Application, d.Application)
	def(&c.LeaseTable, c.Application)
	def(&c.InitialPosition, d.InitialPosition)
	c.InitialPosition = strings.ToUpper(c.InitialPosition)
	if c.Format == "" {
		c.Format = d.Format
	}
	for _, p := range []struct {
		v *time.Duration
		d time.Duration
	}{{&c.IdleBetweenReads, d.IdleBetweenReads}, {&c.ShardSyncInterval, d.ShardSyncInterval}, {&c.FailoverTime, d.FailoverTime}, {&c.DrainTimeout, d.DrainTimeout}, {&c.ProgressTimeout, d.ProgressTimeout}} {
		if *p.v == 0 {
			*p.v = p.d
		}
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = d.MaxRecords
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = d.MaxEventSize
	}
	if c.ConsumerName == "" {
		c.ConsumerName = c.Application
	}
	if c.BalanceLeases == nil {
		on := !c.LeaseStealing
		c.BalanceLeases = &on
	}
	return c
}

// balance reports whether lease balancing is on (BalanceLeases with its
// default).
func (c Config) balance() bool {
	if c.BalanceLeases == nil {
		return !c.LeaseStealing
	}
	return *c.BalanceLeases
}

// withDefaults is WithDefaults plus a worker id: the hostname and a random
// suffix.
func (c Config) withDefaults() Config {
	c = c.WithDefaults()
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = fmt.Sprintf("%s-%d", host, time.Now().UnixNano()%1e6)
	}
	return c
}

// Validate checks the configuration after defaults, naming fields under
// source.kinesis. What it accepts starts without a panic: the KCL panics on
// a blank name or a non-positive count or interval (in milliseconds), so
// those are errors here.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("source.kinesis.%s: "+format, append([]any{field}, args...)...))
	}
	if strings.TrimSpace(c.Stream) == "" {
		bad("stream", "must be set to the Kinesis stream name")
	}
	for _, f := range []struct{ name, v string }{{"application", c.Application}, {"lease_table", c.LeaseTable}, {"consumer_name", c.ConsumerName}} {
		if strings.TrimSpace(f.v) == "" {
			bad(f.name, "must not be blank, got %q", f.v)
		}
	}
	switch c.InitialPosition {
	case "TRIM_HORIZON", "LATEST":
	case "AT_TIMESTAMP":
		if c.InitialTimestamp.IsZero() {
			bad("initial_timestamp", "must be set when initial_position is AT_TIMESTAMP")
		}
	default:
		bad("initial_position", "want TRIM_HORIZON, LATEST or AT_TIMESTAMP, got %q", c.InitialPosition)
	}
	if c.balance() && c.LeaseStealing {
		bad("balance_leases", "cannot be combined with lease_stealing: both move leases between workers; turn one of them off")
	}
	errs = append(errs, c.validateNumbers()...)
	if _, err := envelope.ParseFormat(string(c.Format)); err != nil {
		bad("format", "%v", err)
	}
	return errors.Join(errs...)
}

// validateNumbers checks the counts, sizes and durations (defaults applied).
func (c Config) validateNumbers() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("source.kinesis.%s: "+format, append([]any{field}, args...)...))
	}
	if c.MaxRecords < 1 || c.MaxRecords > 10000 {
		bad("max_records", "must be between 1 and 10000, got %d", c.MaxRecords)
	}
	// The KCL takes these in whole milliseconds and panics on zero.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle_between_reads", c.IdleBetweenReads}, {"shard_sync_interval", c.ShardSyncInterval}} {
		if d.v < time.Millisecond {
			bad(d.name, "must be at least 1ms, got %s", d.v)
		}
	}
	if c.FailoverTime < time.Second {
		bad("failover_time", "must be at least 1s, got %s", c.FailoverTime)
	}
	if c.MaxLeasesForWorker < 0 {
		bad("max_leases_for_worker", "must not be negative (0: no cap), got %d", c.MaxLeasesForWorker)
	}
	if c.MaxEventSize <= 0 {
		bad("max_event_size", "must be positive, got %d", c.MaxEventSize)
	}
	if c.DrainTimeout <= 0 {
		bad("drain_timeout", "must be positive, got %s", c.DrainTimeout)
	}
	if c.ProgressTimeout <= 0 {
		bad("progress_timeout", "must be positive, got %s", c.ProgressTimeout)
	}
	return errs
}

// decoderOptions are the envelope decoder's options for the records.
func (c Config) decoderOptions() envelope.Options {
	return envelope.Options{Format: c.Format, MaxEventSize: c.MaxEventSize}
}
