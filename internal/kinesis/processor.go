package kinesis

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/rs/zerolog"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
)

// processor handles one shard. KCL calls it from the shard's goroutine and
// it drives the shard's pipeline from there: each GetRecords batch is one
// unit, delivered while the next ones are read (pipeline.DefaultInFlight at
// most), and checkpointed at its last record once it and every batch
// before it are acknowledged.
type processor struct {
	s    *Stream
	ctx  context.Context // ends only when a drain times out
	stop context.Context // ends when the worker is asked to stop
	dec  *envelope.Decoder
	pl   *pipeline.Pipeline
	// parentsDone is set once the shard's parents reached SHARD_END.
	parentsDone bool
	// halted is set when delivery failed for good (a missing topic): the
	// processor then reads on without delivering or checkpointing anything
	// until the worker, stopping, releases the shard.
	halted bool
	shard  string
	log    zerolog.Logger
	// gen pairs the processor with its KCL shard consumer (see monitor).
	gen int
	// lost is set when the lease is gone (renewal failed, or the KCL
	// dropped the shard without Shutdown): nothing is checkpointed after.
	lost atomic.Bool

	// released is set once the shard was handed over for balancing
	// (release): nothing later is delivered or checkpointed.
	released bool

	// called is when KCL last called the processor (unix nanos): it does
	// after every read, records or none, so a stale value means the reads
	// stall (or the processor is blocked in delivery; see progress).
	called atomic.Int64
}

func (p *processor) touch() { p.called.Store(time.Now().UnixNano()) }

func (p *processor) Initialize(in *kcl.InitializationInput) {
	p.shard = in.ShardId
	p.log = p.s.log.With().Str("shard_id", p.shard).Logger()
	opts := pipeline.Options{Source: "kinesis", Log: p.log, Metrics: p.s.pm}
	if p.s.suppress != nil {
		opts.Keep = p.s.keep
	}
	p.pl = pipeline.New(p.s.sink, opts)
	from := ""
	if in.ExtendedSequenceNumber != nil {
		from = aws.ToString(in.ExtendedSequenceNumber.SequenceNumber)
	}
	p.log.Info().Str("checkpoint", from).Msg("lease taken; processing shard")
	p.touch()
	p.s.setActive(p, true)
}

// ProcessRecords decodes the records and hands them to the pipeline as one
// unit whose acknowledgement checkpoints the last record. It returns once
// the unit is accepted (blocking while the pipeline is full), so reading
// overlaps delivery. KCL cannot take an error: when delivery fails for
// good, the processor halts — nothing later is checkpointed — and the
// worker stops; the records are read again by the next owner of the shard.
//
// With enhanced fan-out, the lease is kept meanwhile (keepLease), and a
// batch that caught up with the stream is delivered and checkpointed before
// returning: the next event may be a heartbeat seconds away, and the
// checkpoint should not wait for it.
func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	p.touch()
	if p.halted {
		return
	}
	// The lease is kept while a release flushes, too: with Kafka stalled
	// the flush waits, and the lease must not run out meanwhile.
	defer p.keepLease()()
	if p.release() {
		return
	}
	p.s.m.setBehind(p.shard, in.MillisBehindLatest)
	if len(in.Records) == 0 {
		p.halt(p.pl.Collect(p.ctx))
		return
	}
	if !p.parentsDone {
		// Lease renewal runs meanwhile; KCL's own wait misses parents
		// nobody has leased yet and the second parent of a merge.
		if err := p.s.parents.wait(p.stop, p.shard); err != nil {
			// Nothing after this batch may be checkpointed: it was not
			// delivered. halt stops the worker too unless it is stopping
			// anyway; otherwise the error is not transient (AccessDenied on
			// the lease table).
			p.halt(err)
			return
		}
		p.parentsDone = true
	}
	u := &pipeline.Unit{}
	res := envelope.Result{}
	for i := range in.Records {
		r := &in.Records[i]
		p.dec.Decode(&res, r.Data, envelope.Position{Shard: p.shard, Sequence: aws.ToString(r.SequenceNumber)})
	}
	u.Events, u.Errors = res.Events, res.Errors
	last, n, cp, start := in.Records[len(in.Records)-1].SequenceNumber, len(in.Records), in.Checkpointer, time.Now()
	u.Ack = func(ctx context.Context, a pipeline.Acked) error {
		if !p.lost.Load() && p.checkpoint(ctx, cp, last) {
			p.s.m.records.Add(float64(n))
			p.s.m.events.Add(float64(a.Events))
			p.s.m.deliverSeconds.Observe(time.Since(start).Seconds())
		}
		return nil
	}
	if p.halt(p.pl.Submit(p.ctx, u)) {
		return
	}
	if p.s.cfg.EnhancedFanOut {
		if in.MillisBehindLatest == 0 {
			p.halt(p.pl.Flush(p.ctx))
		}
		return // Kinesis pushes: no reads to pace
	}
	p.pace(in)
}

// halt stops the shard's processing after a failure (err != nil) and,
// unless the worker is stopping anyway, the whole worker.
func (p *processor) halt(err error) bool {
	if err == nil {
		return false
	}
	p.halted = true
	p.log.Error().Err(err).Msg("stopping without checkpoint; the records will be read again")
	if p.stop.Err() == nil { // a worker already stopping has nothing to fail
		p.s.fail(err)
	}
	return true
}

// pace spaces GetRecords calls evenly when the shard is not backlogged.
// KCL reads again at once after a non-empty batch but allows itself only
// five calls per second per shard, then sleeps a whole second: at a steady
// trickle that turns into bursts and one-second stalls. Waiting out the
// rest of 1/5 s after a partial batch keeps the latency near 200 ms instead.
func (p *processor) pace(in *kcl.ProcessRecordsInput) {
	if len(in.Records) >= p.s.cfg.MaxRecords || in.CacheEntryTime == nil {
		return // backlogged: read on at full speed
	}
	wait := time.Until(in.CacheEntryTime.Add(time.Second / kinesisReadsPerSecond))
	if wait > 0 {
		select {
		case <-p.stop.Done():
		case <-time.After(wait):
		}
	}
}

// kinesisReadsPerSecond is GetRecords' limit per shard (KCL enforces it too).
const kinesisReadsPerSecond = 5

// checkpoint records seq (nil: shard end), retrying DynamoDB failures a
// few times. A failure means the lease is likely lost; the new owner
// re-reads from the previous checkpoint, so nothing is skipped.
func (p *processor) checkpoint(ctx context.Context, c kcl.IRecordProcessorCheckpointer, seq *string) bool {
	var err error
	for attempt := range 5 {
		if err = c.Checkpoint(seq); err == nil {
			p.s.m.checkpoints.Inc()
			return true
		}
		if backoff.Sleep(ctx, time.Duration(100<<attempt)*time.Millisecond) != nil {
			break
		}
	}
	p.log.Error().Err(err).Str("seq", aws.ToString(seq)).Msg("checkpoint failed; the next owner of the shard re-reads from the previous checkpoint")
	return false
}

// Shutdown: REQUESTED (graceful stop) and TERMINATE (the shard ended after
// resharding) first deliver and checkpoint the units in flight; TERMINATE
// then checkpoints SHARD_END so the children start. ZOMBIE (lease lost)
// must not checkpoint: what is in flight is read again by the new owner.
func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	if p.released {
		// Handed over: the next owner reads on from the checkpoint, also
		// when the shard ended (TERMINATE) meanwhile.
		return
	}
	defer p.s.setActive(p, false)
	defer p.keepLease()()
	p.s.m.behind.DeleteLabelValues(p.shard)
	if in.ShutdownReason != kcl.ZOMBIE && !p.halted && p.pl != nil {
		p.halt(p.pl.Flush(p.ctx))
	}
	switch {
	case in.ShutdownReason == kcl.ZOMBIE, p.lost.Load():
		p.log.Warn().Msg("lease lost; not checkpointing")
	case p.halted:
		p.log.Warn().Msg("delivery had failed; not checkpointing")
	case in.ShutdownReason == kcl.TERMINATE:
		if p.checkpoint(p.ctx, in.Checkpointer, nil) {
			p.log.Info().Msg("shard ended; checkpointed SHARD_END so its children can start")
		}
	default:
		p.log.Info().Msg("shard released")
	}
}
