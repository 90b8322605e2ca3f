package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

// Options configure a replay run. Zero fields take the defaults in their
// comments.
type Options struct {
	Window Window
	// Format of the events; FormatAuto (default) uses the layout's format.
	Format envelope.Format
	// Tenant for exports whose events carry none (fulfillmenttools,
	// Infobip), unless the Source names one. Default none.
	Tenant string
	// Concurrency is how many objects are read at once. Default 4.
	Concurrency int
	// BatchSize is the most events per sink batch. Default 1000.
	BatchSize int
	// RateLimit caps events per second across the run (0: no cap).
	RateLimit float64
	// MaxEventSize and MaxRecordSize bound the decoder; defaults 1 MiB and 8 MiB.
	MaxEventSize  int
	MaxRecordSize int
}

// Source is one store and the objects to read from it.
type Source struct {
	Store   Store
	Objects []Object
	Format  envelope.Format
	// Tenant for this source's events that carry none; default
	// Options.Tenant. See TenantFromLocation.
	Tenant string
}

// Summary is the outcome of a run. Earlier counts the objects earlier runs
// (recorded in the state) delivered events or dead letters from.
type Summary struct {
	Objects, Skipped, Failed int
	Earlier                  int
	Events, Dead, Outside    int64
	Bytes                    int64
	Elapsed                  time.Duration
	Failures                 []string
}

// Runner replays sources into a sink.
type Runner struct {
	opts     Options
	sink     sink.Sink
	state    *State
	log      zerolog.Logger
	limit    limiter
	Progress Progress
}

// NewRunner builds a runner.
func NewRunner(opts Options, s sink.Sink, state *State, log zerolog.Logger) *Runner {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	return &Runner{opts: opts, sink: s, state: state, log: log, limit: limiter{rate: opts.RateLimit}}
}

type job struct {
	store  Store
	obj    Object
	format envelope.Format
	tenant string
}

// Run reads every object of the sources, Concurrency at a time, each in
// order. An object that cannot be read to its end (a truncated gzip file)
// is reported, its good prefix delivered, and the run goes on; Run then
// returns an error naming the failures. Run returns early only when ctx
// ends or a Kafka topic is missing (sink.ErrTopicMissing); the state then
// holds what was acknowledged.
func (r *Runner) Run(parent context.Context, sources []Source) (Summary, error) {
	start := time.Now()
	// A missing Kafka topic stops every object: no retry can mend it.
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	jobs := r.jobs(sources)
	var sum Summary
	var mu sync.Mutex
	next := make(chan job)
	var wg sync.WaitGroup
	for range min(r.opts.Concurrency, max(len(jobs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				earlier := r.state.Delivered(j.store.Name() + "/" + j.obj.Key)
				st, skipped, err := r.object(ctx, j)
				if errors.Is(err, sink.ErrTopicMissing) {
					stop(err)
				}
				mu.Lock()
				if earlier {
					sum.Earlier++
				}
				sum.Events += st.Events
				sum.Dead += st.Dead
				sum.Outside += st.Outside
				sum.Bytes += st.Bytes
				switch {
				case skipped:
					sum.Skipped++
				case err != nil && ctx.Err() == nil:
					sum.Failed++
					sum.Failures = append(sum.Failures, fmt.Sprintf("%s/%s: %v", j.store.Name(), j.obj.Key, err))
				case err == nil:
					sum.Objects++
				}
				mu.Unlock()
				r.Progress.objectsDone.Add(1)
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	sum.Elapsed = time.Since(start)
	if cause := context.Cause(ctx); errors.Is(cause, sink.ErrTopicMissing) {
		return sum, fmt.Errorf("replay stopped; rerun to resume from the state file once the topic exists: %w", cause)
	}
	if ctx.Err() != nil {
		return sum, fmt.Errorf("replay interrupted; rerun to resume from the state file: %w", ctx.Err())
	}
	if sum.Failed > 0 {
		return sum, fmt.Errorf("%d object(s) could not be read to the end: %v", sum.Failed, sum.Failures)
	}
	return sum, nil
}

// jobs lists the objects of sources, each with its tenant, and counts
// them into the progress.
func (r *Runner) jobs(sources []Source) []job {
	var jobs []job
	for _, src := range sources {
		tenant := src.Tenant
		if tenant == "" {
			tenant = r.opts.Tenant
		}
		for _, o := range src.Objects {
			jobs = append(jobs, job{store: src.Store, obj: o, format: src.Format, tenant: tenant})
			r.Progress.bytesTotal.Add(o.Size)
		}
	}
	r.Progress.objectsTotal.Store(int64(len(jobs)))
	return jobs
}

// object replays one object, resuming after what the state says was
// acknowledged, and records its progress after every delivered batch.
func (r *Runner) object(ctx context.Context, j job) (st ObjectStats, skipped bool, err error) {
	id := j.store.Name() + "/" + j.obj.Key
	done, resume := r.state.Resume(id)
	if done {
		r.Progress.bytesDone.Add(j.obj.Size)
		return st, true, nil
	}
	log := r.log.With().Str("object", id).Logger()
	dec, err := envelope.NewDecoder(envelope.Options{Format: j.format, Tenant: j.tenant, MaxEventSize: r.opts.MaxEventSize})
	if err != nil {
		return st, false, err
	}
	rc, err := j.store.Open(ctx, j.obj.Key)
	if err != nil {
		r.state.Fail(id, err.Error())
		return st, false, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc, n: &r.Progress.bytesDone}
	var batch sink.Batch
	var acked int64 = resume
	flush := func(end int64) error {
		if batch.Len() > 0 {
			if err := r.limit.wait(ctx, len(batch.Events)); err != nil {
				return err
			}
			if err := pipeline.Deliver(ctx, r.sink, &batch, log, 30*time.Second); err != nil {
				return err
			}
			st.Events += int64(len(batch.Events))
			st.Dead += int64(len(batch.Dead))
			r.Progress.events.Add(int64(len(batch.Events)))
			batch.Reset()
		}
		if end > acked {
			acked = end
			return r.state.Progress(id, end)
		}
		return nil
	}
	err = dec.DecodeObject(cr, j.obj.Key, r.opts.MaxRecordSize, func(res *envelope.Result) error {
		if res.End <= resume {
			return nil // acknowledged by an earlier run
		}
		for _, e := range res.Errors {
			log.Warn().Int64("line", e.Pos.Line).Int64("offset", e.Pos.Offset).Str("kind", string(e.Kind)).Str("reason", e.Reason).Msg("bad record sent to the dead-letter topic")
		}
		n := len(res.Events)
		res.Events = filterWindow(res.Events, r.opts.Window)
		st.Outside += int64(n - len(res.Events))
		pipeline.Add(&batch, res)
		if batch.Len() >= r.opts.BatchSize {
			return flush(res.End)
		}
		return nil
	})
	st.Bytes = cr.total
	var streamErr *envelope.StreamError
	switch {
	case err == nil:
		if err := flush(acked); err != nil {
			return st, false, err
		}
		return st, false, r.state.Complete(id, st)
	case errors.As(err, &streamErr):
		// Deliver the good prefix, then report where the object broke.
		if ferr := flush(acked); ferr != nil {
			return st, false, ferr
		}
		log.Error().Int64("line", streamErr.Line).Int64("offset", streamErr.Offset).Err(streamErr.Err).Msg("object is corrupt; its good prefix was delivered")
		r.state.Fail(id, err.Error())
		return st, false, fmt.Errorf("corrupt at line %d, offset %d: %w", streamErr.Line, streamErr.Offset, streamErr.Err)
	default:
		return st, false, err
	}
}

// filterWindow keeps the events inside w, in place.
func filterWindow(evs []envelope.Event, w Window) []envelope.Event {
	if w.From.IsZero() && w.To.IsZero() {
		return evs
	}
	kept := evs[:0]
	for _, e := range evs {
		if w.Contains(e.OccurredAt) {
			kept = append(kept, e)
		}
	}
	return kept
}

type countingReader struct {
	r     io.Reader
	n     *atomic.Int64
	total int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.total += int64(n)
	return n, err
}

// limiter paces deliveries to rate events per second across workers: a
// batch is sent once the run has lasted long enough for it and everything
// before it.
type limiter struct {
	rate  float64
	mu    sync.Mutex
	start time.Time
	sent  float64
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l.rate <= 0 {
		return nil
	}
	l.mu.Lock()
	if l.start.IsZero() {
		l.start = time.Now()
	}
	l.sent += float64(n)
	due := l.start.Add(time.Duration(l.sent / l.rate * float64(time.Second)))
	l.mu.Unlock()
	return backoff.Sleep(ctx, time.Until(due))
}
