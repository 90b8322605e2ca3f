// Package pipeline is the one engine every source runs through, between
// decoding and checkpointing:
//
//	source --Unit{events, decode errors, Ack}--> Pipeline --Batch--> sink
//	                                                  \--in order--> Ack (checkpoint)
//
// A source (a Kinesis shard, a replay object, an API poll) hands over
// units: what decoding produced plus an Ack that records the source's
// progress (KCL checkpoint, replay state offset, poll cursor). The
// pipeline applies the source's filter, turns decode errors into dead
// letters (logged and counted the same way for every source), delivers
// several units at once (bounded by InFlight) with backoff, and calls each
// Ack only after the sink acknowledged that unit and every unit before it.
// A crash or kill therefore re-reads at most the units in flight.
//
// Pull sources implement Source and call Run; push sources (the KCL calls
// the Kinesis processor with each batch of records) drive a Pipeline with
// Submit, Collect and Flush — the same engine.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

// Unit is one acknowledgement unit of a source.
type Unit struct {
	Events []envelope.Event
	// Errors are decode errors; they become dead letters with their raw
	// bytes, position and reason.
	Errors []*envelope.Error
	// Ack records the source's progress. It runs once the sink acknowledged
	// this unit and every unit submitted before it, on the goroutine that
	// calls Submit, Collect or Flush. nil: nothing to record.
	Ack func(ctx context.Context, a Acked) error
}

// Acked is what the sink took of a unit: the events the filter kept and
// the dead letters (decode errors, and events Kafka rejected).
type Acked struct {
	Events, Dead int
}

// Source yields units until it returns io.EOF.
type Source interface {
	Next(ctx context.Context) (*Unit, error)
}

// Defaults of Options.
const (
	// DefaultInFlight units per source are delivered at once: the source
	// reads and decodes the next unit while one is on the wire. Chosen by
	// running the replay benchmark (BenchmarkReplayDefaults) with 1, 2 and
	// 4: 2 was the fastest and used less CPU and memory than 4.
	DefaultInFlight = 2
	// DefaultMaxBackoff caps the wait between attempts to deliver a unit the
	// sink refused.
	DefaultMaxBackoff = 30 * time.Second
)

// Options configure a pipeline.
type Options struct {
	// Source labels metrics and logs: "kinesis", "replay", "akeneo-logs"...
	Source string
	// InFlight is the most units delivered at once. Default DefaultInFlight.
	InFlight int
	// Keep filters events before delivery (replay windows, a backfill's
	// overlap); nil keeps every event.
	Keep func(*envelope.Event) bool
	// MaxBackoff caps the retry delay. Default DefaultMaxBackoff.
	MaxBackoff time.Duration
	Log        zerolog.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// Pipeline delivers one source's units in order. It is not safe for
// concurrent use: a source drives it from one goroutine.
type Pipeline struct {
	sink    sink.Sink
	opts    Options
	pending []*flight
	failed  error
	// oldest is when the oldest pending unit was handed over (unix nanos,
	// 0: none); acking is set while its acknowledgement runs. Both are read
	// by watchdogs on other goroutines.
	oldest atomic.Int64
	acking atomic.Bool
	// bad summarises decode errors: one log line per source run (object,
	// poll) or per summaryEvery, not one per record.
	bad badRecords
}

// Waiting reports how long the oldest unit not yet acknowledged has been
// pending (0 when none is) and what it waits on: "delivery" to the sink,
// or "acknowledgement" (the source recording its progress: a checkpoint).
// It is safe to call from any goroutine.
func (p *Pipeline) Waiting(now time.Time) (time.Duration, string) {
	t := p.oldest.Load()
	if t == 0 {
		return 0, ""
	}
	what := "delivery"
	if p.acking.Load() {
		what = "acknowledgement"
	}
	return now.Sub(time.Unix(0, t)), what
}

// track records the oldest pending unit's start for Waiting.
func (p *Pipeline) track() {
	if len(p.pending) == 0 {
		p.oldest.Store(0)
		return
	}
	p.oldest.Store(p.pending[0].start.UnixNano())
}

// flight is a unit being delivered.
type flight struct {
	batch sink.Batch
	dead  int // len(batch.Dead) before delivery (the sink may append)
	ack   func(ctx context.Context, a Acked) error
	done  chan struct{}
	err   error
	// resend: an earlier unit needed a retry while this one was in
	// flight, so its messages may sit before the earlier unit's re-sent
	// copies; it is delivered again to keep each key's last copy in order.
	resend bool
	start  time.Time
}

// New makes a pipeline delivering into s.
func New(s sink.Sink, opts Options) *Pipeline {
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultInFlight
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	return &Pipeline{sink: s, opts: opts}
}

// Run delivers every unit of src, then waits until all are acknowledged.
// A source error (a corrupt object, say) is returned after the units
// before it were delivered and acknowledged.
func Run(ctx context.Context, s sink.Sink, opts Options, src Source) error {
	p := New(s, opts)
	for {
		u, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return p.Flush(ctx)
		}
		if err != nil {
			return errors.Join(err, p.Flush(ctx))
		}
		if err := p.Submit(ctx, u); err != nil {
			p.bad.log(p.opts.Log, p.opts.Source) // what Flush would have logged
			return err
		}
	}
}

// Submit starts delivering u. It acknowledges the units that are done and
// blocks while InFlight units are pending. After a failure (the end of
// ctx, a missing topic, an Ack error) it returns that error and nothing
// later is acknowledged.
func (p *Pipeline) Submit(ctx context.Context, u *Unit) error {
	if p.failed != nil {
		return p.failed
	}
	f := &flight{ack: u.Ack, done: make(chan struct{}), start: time.Now()}
	p.prepare(&f.batch, u)
	f.dead = len(f.batch.Dead)
	if f.batch.Len() == 0 {
		close(f.done)
	} else {
		go func() {
			f.err = Deliver(ctx, p.sink, &f.batch, p.opts.Log, p.opts.MaxBackoff)
			close(f.done)
		}()
	}
	p.pending = append(p.pending, f)
	p.track()
	if err := p.Collect(ctx); err != nil {
		return err
	}
	for len(p.pending) >= p.opts.InFlight {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Collect acknowledges, in order, the units already delivered, without
// waiting for the others.
func (p *Pipeline) Collect(ctx context.Context) error {
	for len(p.pending) > 0 && p.failed == nil {
		select {
		case <-p.pending[0].done:
		default:
			return nil
		}
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	return p.failed
}

// Flush waits until every submitted unit is delivered and acknowledged,
// and logs the summary of the decode errors not yet logged.
func (p *Pipeline) Flush(ctx context.Context) error {
	defer p.bad.log(p.opts.Log, p.opts.Source)
	for len(p.pending) > 0 && p.failed == nil {
		if err := p.settle(ctx); err != nil {
			return err
		}
	}
	return p.failed
}

// Pending is the number of units submitted and not yet acknowledged.
func (p *Pipeline) Pending() int { return len(p.pending) }

// prepare fills b from u: the events the filter keeps, and the decode
// errors as dead letters, each logged and counted.
func (p *Pipeline) prepare(b *sink.Batch, u *Unit) {
	b.Events = u.Events
	if p.opts.Keep != nil {
		b.Events = make([]envelope.Event, 0, len(u.Events))
		for i := range u.Events {
			if p.opts.Keep(&u.Events[i]) {
				b.Events = append(b.Events, u.Events[i])
			}
		}
		p.opts.Metrics.filtered(p.opts.Source, len(u.Events)-len(b.Events))
	}
	for _, e := range u.Errors {
		p.opts.Metrics.decodeError(p.opts.Source, e.Kind)
		p.bad.add(e)
		b.Dead = append(b.Dead, sink.FromDecodeError(e))
	}
	if p.bad.due(time.Now()) {
		p.bad.log(p.opts.Log, p.opts.Source)
	}
}

// settle waits for the oldest pending unit, re-delivers it when an earlier
// unit's retry may have overtaken it, and acknowledges it.
func (p *Pipeline) settle(ctx context.Context) error {
	f := p.pending[0]
	<-f.done
	if f.err == nil && f.resend {
		f.batch.Dead = f.batch.Dead[:f.dead]
		f.batch.Retried = false
		f.err = Deliver(ctx, p.sink, &f.batch, p.opts.Log, p.opts.MaxBackoff)
	}
	if f.err != nil {
		p.failed = f.err
		return f.err
	}
	if f.batch.Retried {
		for _, later := range p.pending[1:] {
			later.resend = true
		}
	}
	if f.ack != nil {
		p.acking.Store(true)
		err := f.ack(ctx, Acked{Events: len(f.batch.Events), Dead: len(f.batch.Dead)})
		p.acking.Store(false)
		if err != nil {
			p.failed = fmt.Errorf("recording progress: %w", err)
			return p.failed
		}
	}
	p.opts.Metrics.acked(p.opts.Source, &f.batch, time.Since(f.start))
	p.pending[0] = nil
	p.pending = p.pending[1:]
	p.track()
	return nil
}
