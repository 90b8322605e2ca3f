package kinesis

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
)

// processor handles one shard. KCL calls it from the shard's goroutine.
type processor struct {
	s    *Stream
	ctx  context.Context // ends only when a drain times out
	stop context.Context // ends when the worker is asked to stop
	dec  *envelope.Decoder
	// parentsDone is set once the shard's parents reached SHARD_END.
	parentsDone bool
	// halted is set when delivery failed for good (a missing topic): the
	// processor then reads on without delivering or checkpointing anything
	// until the worker, stopping, releases the shard.
	halted bool
	shard  string
	log    zerolog.Logger
	res    envelope.Result
	batch  sink.Batch
}

func (p *processor) Initialize(in *kcl.InitializationInput) {
	p.shard = in.ShardId
	p.log = p.s.log.With().Str("shard_id", p.shard).Logger()
	from := ""
	if in.ExtendedSequenceNumber != nil {
		from = aws.ToString(in.ExtendedSequenceNumber.SequenceNumber)
	}
	p.log.Info().Str("checkpoint", from).Msg("lease taken; processing shard")
	p.s.setActive(p.shard, true)
}

// ProcessRecords decodes the records, delivers every event (and dead
// letter) and only then checkpoints the last record. It cannot return an
// error to KCL, so it blocks and retries until the sink acknowledged; if
// the process is stopping for good it returns without checkpointing and
// the records are read again by the next owner of the shard.
func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if p.halted {
		return
	}
	if len(in.Records) == 0 {
		p.s.m.behind.WithLabelValues(p.shard).Set(float64(in.MillisBehindLatest))
		return
	}
	if !p.parentsDone {
		// Lease renewal runs meanwhile; KCL's own wait misses parents
		// nobody has leased yet and the second parent of a merge.
		if err := p.s.parents.wait(p.stop, p.shard); err != nil {
			p.log.Warn().Err(err).Msg("stopped while waiting for the parent shard; not checkpointing")
			return
		}
		p.parentsDone = true
	}
	p.batch.Reset()
	for i := range in.Records {
		r := &in.Records[i]
		p.res.Reset()
		p.dec.Decode(&p.res, r.Data, envelope.Position{Shard: p.shard, Sequence: aws.ToString(r.SequenceNumber)})
		if p.s.suppress != nil {
			p.res.Events = p.dropSuppressed(p.res.Events)
		}
		pipeline.Add(&p.batch, &p.res)
		for _, e := range p.res.Errors {
			p.s.m.decodeErrors.WithLabelValues(string(e.Kind)).Inc()
			p.log.Warn().Str("seq", e.Pos.Sequence).Int("index", e.Pos.Index).Str("kind", string(e.Kind)).Str("reason", e.Reason).Msg("record sent to the dead-letter topic")
		}
	}
	start := time.Now()
	if err := pipeline.Deliver(p.ctx, p.s.sink, &p.batch, p.log, 30*time.Second); err != nil {
		p.log.Error().Err(err).Msg("stopping without checkpoint; the records will be read again")
		if errors.Is(err, sink.ErrTopicMissing) {
			p.halted = true
			p.s.fail(err)
		}
		return
	}
	last := in.Records[len(in.Records)-1].SequenceNumber
	if !p.checkpoint(in.Checkpointer, last) {
		return
	}
	p.s.m.records.Add(float64(len(in.Records)))
	p.s.m.events.Add(float64(len(p.batch.Events)))
	p.s.m.deliverSeconds.Observe(time.Since(start).Seconds())
	p.s.m.behind.WithLabelValues(p.shard).Set(float64(in.MillisBehindLatest))
	p.pace(in)
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

// dropSuppressed removes, in place, events a backfill already delivered.
func (p *processor) dropSuppressed(evs []envelope.Event) []envelope.Event {
	kept := evs[:0]
	for _, e := range evs {
		if p.s.suppress(e.ID) {
			p.s.m.suppressed.Inc()
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// checkpoint records seq (nil: shard end), retrying DynamoDB failures a
// few times. A failure means the lease is likely lost; the new owner
// re-reads from the previous checkpoint, so nothing is skipped.
func (p *processor) checkpoint(c kcl.IRecordProcessorCheckpointer, seq *string) bool {
	var err error
	for attempt := range 5 {
		if err = c.Checkpoint(seq); err == nil {
			p.s.m.checkpoints.Inc()
			return true
		}
		if p.ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
	}
	p.log.Error().Err(err).Str("seq", aws.ToString(seq)).Msg("checkpoint failed; the next owner of the shard re-reads from the previous checkpoint")
	return false
}

// Shutdown: TERMINATE (the shard ended after resharding) checkpoints
// SHARD_END so the children start; REQUESTED (graceful stop) has nothing
// pending because ProcessRecords checkpoints each delivered batch; ZOMBIE
// (lease lost) must not checkpoint.
func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	defer p.s.setActive(p.shard, false)
	p.s.m.behind.DeleteLabelValues(p.shard)
	switch in.ShutdownReason {
	case kcl.TERMINATE:
		if p.halted {
			p.log.Warn().Msg("shard ended but delivery had failed; not checkpointing SHARD_END")
			return
		}
		if p.checkpoint(in.Checkpointer, nil) {
			p.log.Info().Msg("shard ended; checkpointed SHARD_END so its children can start")
		}
	case kcl.ZOMBIE:
		p.log.Warn().Msg("lease lost; not checkpointing")
	default:
		p.log.Info().Msg("shard released")
	}
}
