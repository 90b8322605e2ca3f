package kinesis

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
)

// TestValidateNamesNumericFields: each count, size and duration out of
// range is an error naming its field and the value. max_event_size -1 used
// to pass and panic the worker on its first record; negative
// idle_between_reads and shard_sync_interval panicked in the KCL at start;
// a negative drain_timeout was accepted.
func TestValidateNamesNumericFields(t *testing.T) {
	tests := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.MaxEventSize = -1 }, "source.kinesis.max_event_size: must be positive, got -1"},
		{func(c *Config) { c.IdleBetweenReads = -time.Second }, "source.kinesis.idle_between_reads: must be at least 1ms, got -1s"},
		{func(c *Config) { c.IdleBetweenReads = 500 * time.Microsecond }, "source.kinesis.idle_between_reads: must be at least 1ms, got 500µs"},
		{func(c *Config) { c.ShardSyncInterval = -time.Second }, "source.kinesis.shard_sync_interval: must be at least 1ms, got -1s"},
		{func(c *Config) { c.DrainTimeout = -time.Second }, "source.kinesis.drain_timeout: must be positive, got -1s"},
		{func(c *Config) { c.MaxLeasesForWorker = -2 }, "source.kinesis.max_leases_for_worker: must not be negative (0: no cap), got -2"},
		{func(c *Config) { c.MaxRecords = -5 }, "source.kinesis.max_records: must be between 1 and 10000, got -5"},
		{func(c *Config) { c.Application = " " }, `source.kinesis.application: must not be blank, got " "`},
		{func(c *Config) { c.Stream = "  " }, "source.kinesis.stream: must be set"},
	}
	for _, tc := range tests {
		c := Config{Stream: "s"}
		tc.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}

// TestAcceptedConfigsStartWithoutPanic is a property over Config: whatever
// Validate accepts builds the KCL configuration (kclConfig) and the record
// decoder without a panic or an error. Boundary and random values for each
// numeric field, seeded, a bounded number of cases.
func TestAcceptedConfigsStartWithoutPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2024))
	ints := []int{math.MinInt, -1, 0, 1, 2, 999, 1000, 10000, 10001, math.MaxInt32, math.MaxInt}
	durs := []time.Duration{math.MinInt64, -time.Second, -1, 0, 1, time.Microsecond, 999 * time.Microsecond, time.Millisecond,
		999 * time.Millisecond, time.Second, time.Hour, math.MaxInt64}
	names := []string{"", " ", "a", "eventrelay"}
	pickInt := func() int {
		if rng.IntN(3) == 0 {
			return rng.IntN(40000) - 20000
		}
		return ints[rng.IntN(len(ints))]
	}
	pickDur := func() time.Duration {
		if rng.IntN(3) == 0 {
			return time.Duration(rng.Int64N(int64(2*time.Minute))) - time.Minute
		}
		return durs[rng.IntN(len(durs))]
	}
	accepted := 0
	for i := range 5000 {
		// Each field keeps its default (zero) or, one time in three, takes
		// a boundary or random value, so that many cases are valid.
		c := Config{Stream: "s", EnhancedFanOut: rng.IntN(2) == 0, LeaseStealing: rng.IntN(2) == 0}
		for _, p := range []*int{&c.MaxRecords, &c.MaxLeasesForWorker, &c.MaxEventSize} {
			if rng.IntN(3) == 0 {
				*p = pickInt()
			}
		}
		for _, p := range []*time.Duration{&c.IdleBetweenReads, &c.ShardSyncInterval, &c.FailoverTime, &c.DrainTimeout} {
			if rng.IntN(3) == 0 {
				*p = pickDur()
			}
		}
		for _, p := range []*string{&c.Application, &c.ConsumerName} {
			if rng.IntN(3) == 0 {
				*p = names[rng.IntN(len(names))]
			}
		}
		if c.Validate() != nil {
			continue
		}
		accepted++
		if err := startsWithoutPanic(c); err != nil {
			t.Fatalf("case %d: Validate accepted %+v but starting it failed: %v", i, c, err)
		}
	}
	if accepted < 500 {
		t.Fatalf("only %d of the generated configurations were valid: the generator does not exercise the start", accepted)
	}
}

// startsWithoutPanic builds what Run and CreateProcessor build from c.
func startsWithoutPanic(c Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	s := &Stream{cfg: c.withDefaults(), clients: Clients{Region: "eu-west-1"}, log: zerolog.Nop(), m: newMetrics(prometheus.NewRegistry())}
	s.kclConfig()
	_, err = envelope.NewDecoder(s.cfg.decoderOptions())
	return err
}

// TestCreateProcessorDoesNotDiscardTheDecoderError: with options the
// decoder refuses, the processor is halted and the worker stops with the
// error, instead of a nil decoder panicking on the first record.
func TestCreateProcessorDoesNotDiscardTheDecoderError(t *testing.T) {
	s := &Stream{cfg: Config{Stream: "s", MaxEventSize: -1}, log: zerolog.Nop(), m: newMetrics(prometheus.NewRegistry()), fatal: make(chan error, 1)}
	p := (&factory{s: s, ctx: t.Context(), stop: t.Context()}).CreateProcessor()
	p.ProcessRecords(&kcl.ProcessRecordsInput{Records: nil})
	select {
	case err := <-s.fatal:
		if !strings.Contains(err.Error(), "max_event_size") {
			t.Errorf("fatal error %v does not name max_event_size", err)
		}
	default:
		t.Fatal("the worker was not stopped")
	}
	if _, err := New(Config{Stream: "s", MaxEventSize: -1}, Clients{}, nil, zerolog.Nop(), nil); err == nil {
		t.Error("New accepted max_event_size -1")
	}
}

// TestBehindLatestInSeconds: Kinesis reports MillisBehindLatest; the gauge
// is in seconds, the Prometheus base unit the dashboard and alerts assume.
func TestBehindLatestInSeconds(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	m.setBehind("shardId-000000000000", 1500)
	if got := testutil.ToFloat64(m.behind.WithLabelValues("shardId-000000000000")); got != 1.5 {
		t.Errorf("eventrelay_kinesis_behind_latest_seconds = %v for MillisBehindLatest 1500, want 1.5", got)
	}
}
