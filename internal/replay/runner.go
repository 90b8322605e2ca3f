package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
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
	// BatchSize is the most events per sink batch. Default DefaultBatchSize.
	BatchSize int
	// InFlight is the most batches per object delivered at once. Default
	// pipeline.DefaultInFlight.
	InFlight int
	// RateLimit caps events per second across the run (0: no cap).
	RateLimit float64
	// MaxEventSize and MaxRecordSize bound the decoder; defaults 1 MiB and 8 MiB.
	MaxEventSize  int
	MaxRecordSize int
	// DrainTimeout is how long, once the run's ctx ends (a SIGTERM), the
	// units already read may take to be delivered and acknowledged; no
	// more is read meanwhile. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ReadStall is how long one read of an object may wait for bytes
	// before the connection is dropped and the read resumed from the same
	// byte (resumingReader). Default DefaultReadStall.
	ReadStall time.Duration
}

// DefaultBatchSize is the default of Options.BatchSize. A replay holds
// about Concurrency x (InFlight + 1) batches. Chosen by hand-run A/B
// comparisons of the BenchmarkReplayDefaults scenario (there is no flag to
// bench it with): 500 events peaked ~20 MB lower than 1000 at the same
// events/s and CPU per event; 250 (with 2 or 3 in flight) was slower.
const DefaultBatchSize = 500

// DefaultDrainTimeout is the default of Options.DrainTimeout.
const DefaultDrainTimeout = 30 * time.Second

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
	opts  Options
	sink  sink.Sink
	state *State
	log   zerolog.Logger
	// limit paces the run to RateLimit events per second (nil: no cap);
	// its burst is one second's worth, so a stalled run cannot burst after
	// it.
	limit *rate.Limiter
	// Metrics are the pipeline's series (nil: none).
	Metrics  *pipeline.Metrics
	Progress Progress
	// chunks recycles the objects' read chunks when the sink says when
	// their bytes are free (sink.WriteFailures); nil otherwise.
	chunks   *envelope.ChunkPool
	failures func() uint64
}

// NewRunner builds a runner.
func NewRunner(opts Options, s sink.Sink, state *State, log zerolog.Logger) *Runner {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	r := &Runner{opts: opts, sink: s, state: state, log: log}
	if wf, ok := s.(sink.WriteFailures); ok {
		r.chunks, r.failures = &envelope.ChunkPool{}, wf.WriteFailures
	}
	if opts.RateLimit > 0 {
		r.limit = rate.NewLimiter(rate.Limit(opts.RateLimit), max(1, int(opts.RateLimit)))
	}
	return r
}

type job struct {
	store  Store
	obj    Object
	format envelope.Format
	tenant string
}

// id names the object in the state file and logs.
func (j job) id() string { return j.store.Name() + "/" + j.obj.Key }

// Run reads every object of the sources, Concurrency at a time, each in
// order through the shared pipeline. An object that cannot be read to its
// end (a truncated gzip file) is reported, its good prefix delivered, and
// the run goes on; Run then returns an error naming the failures. Run
// returns early only when ctx ends or a Kafka topic is missing
// (sink.ErrTopicMissing); the state then holds what was acknowledged.
//
// When ctx ends, Run stops reading and delivers and acknowledges the
// units already read, for up to DrainTimeout, so a rerun repeats nothing
// (a kill repeats at most the units in flight).
func (r *Runner) Run(ctx context.Context, sources []Source) (Summary, error) {
	start := time.Now()
	jobs := r.jobs(sources)
	var sum Summary
	var mu sync.Mutex
	// Objects fail alone; a missing topic or the end of ctx stops the
	// reading of every object (no retry can mend a missing topic), while
	// what is in flight is still delivered and recorded on deliver, so a
	// rerun repeats nothing.
	stop, stopReading := context.WithCancelCause(ctx)
	defer stopReading(nil)
	deliver, endDrain := r.drain(ctx)
	defer endDrain()
	var g errgroup.Group
	g.SetLimit(r.opts.Concurrency)
	for _, j := range jobs {
		if stop.Err() != nil {
			break
		}
		g.Go(func() error {
			earlier := r.state.Delivered(j.id())
			st, skipped, err := r.object(deliver, stop, j)
			mu.Lock()
			defer mu.Unlock()
			r.Progress.objectsDone.Add(1)
			sum.add(st, earlier)
			switch {
			case errors.Is(err, sink.ErrTopicMissing):
				stopReading(err)
				return err
			case skipped:
				sum.Skipped++
			case errors.Is(err, errStopped) || err != nil && ctx.Err() != nil:
			case err != nil:
				sum.Failed++
				sum.Failures = append(sum.Failures, fmt.Sprintf("%s: %v", j.id(), err))
			default:
				sum.Objects++
			}
			return nil
		})
	}
	err := g.Wait()
	sum.Elapsed = time.Since(start)
	// Written last: the progress of every unit acknowledged above.
	ferr := r.state.Flush()
	switch {
	case err != nil:
		err = fmt.Errorf("replay stopped; rerun to resume from the state file once the topic exists: %w", err)
	case ctx.Err() != nil:
		err = fmt.Errorf("replay interrupted; rerun to resume from the state file: %w", ctx.Err())
	case sum.Failed > 0:
		err = fmt.Errorf("%d object(s) could not be read to the end: %v", sum.Failed, sum.Failures)
	}
	if ferr != nil {
		err = errors.Join(err, ferr)
	}
	return sum, err
}

// errStopped ends an object's source when the run stops reading.
var errStopped = envelope.ErrStopped

// drain returns the context deliveries run on: it outlives ctx by
// DrainTimeout, so that once ctx ends the units already read are still
// delivered and acknowledged. The cancel func ends it.
func (r *Runner) drain(ctx context.Context) (context.Context, context.CancelFunc) {
	deliver, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
		case <-deliver.Done():
			return
		}
		r.log.Info().Str("drain_timeout", r.opts.DrainTimeout.String()).Msg("stopping: reading no further; delivering and acknowledging what was read")
		t := time.NewTimer(r.opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			r.log.Warn().Str("drain_timeout", r.opts.DrainTimeout.String()).Msg("drain timeout: giving up the deliveries in flight; a rerun sends them again")
			cancel()
		case <-deliver.Done():
		}
	}()
	return deliver, cancel
}

func (s *Summary) add(st ObjectStats, earlier bool) {
	if earlier {
		s.Earlier++
	}
	s.Events += st.Events
	s.Dead += st.Dead
	s.Outside += st.Outside
	s.Bytes += st.Bytes
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

// object replays one object through the pipeline, resuming after what
// the state says was acknowledged, and records its progress after every
// acknowledged unit. Deliveries run on ctx. Once stop ends it reads no
// further (a read blocked on the object is cut by closing it), delivers
// what it handed on, and returns errStopped.
func (r *Runner) object(ctx, stop context.Context, j job) (st ObjectStats, skipped bool, err error) {
	id := j.id()
	done, resume := r.state.Resume(id)
	if done {
		r.Progress.bytesDone.Add(j.obj.Size)
		return st, true, nil
	}
	if stop.Err() != nil {
		return st, false, errStopped
	}
	log := r.log.With().Str("object", id).Logger()
	dec, err := envelope.NewDecoder(envelope.Options{Format: j.format, Tenant: j.tenant, MaxEventSize: r.opts.MaxEventSize})
	if err != nil {
		return st, false, err
	}
	version := ""
	if resume > 0 {
		if version = r.state.Version(id); version == "" {
			log.Warn().Int64("offset", resume).Msg("the state records no version of this object (written by an older eventrelay, or the store names none): reading on at the recorded offset without checking that it is the same object")
		}
	}
	var rc *resumingReader
	if version != "" && j.obj.Version != "" && j.obj.Version != version {
		// The listing already names another version (a store that
		// ignores If-Match would serve it).
		err = fmt.Errorf("%w: listed as version %s, recorded as %s", ErrObjectReplaced, j.obj.Version, version)
	} else {
		rc, err = openResuming(stop, j.store, j.obj, version, r.opts.ReadStall, log, &r.Progress.resumes)
	}
	if errors.Is(err, ErrObjectReplaced) {
		err = fmt.Errorf("an earlier run acknowledged it up to offset %d: %w", resume, err)
	}
	if err != nil {
		return st, false, r.objectErr(log, id, stop, err)
	}
	r.state.SetVersion(id, rc.version)
	defer rc.Close()
	defer context.AfterFunc(stop, func() { rc.Close() })()
	cr := &countingReader{r: stopReader{stop: stop, r: rc}, n: &r.Progress.bytesDone}
	or, err := dec.NewObjectReader(cr, j.obj.Key, r.opts.MaxRecordSize)
	if err == nil {
		if r.chunks != nil {
			or.Recycle(r.chunks, r.failures)
		}
		src := &objectSource{r: r, id: id, or: or, resume: resume, st: &st, stop: stop, bytes: func() int64 { return cr.total }}
		opts := pipeline.Options{Source: "replay", InFlight: r.opts.InFlight, Log: log, Metrics: r.Metrics}
		if w := r.opts.Window; !w.From.IsZero() || !w.To.IsZero() {
			opts.Keep = src.keep // an open window keeps everything: no filter, no copy
		}
		err = pipeline.Run(ctx, r.sink, opts, src)
	}
	st.Bytes = cr.total
	return st, false, r.objectErr(log, id, stop, err)
}

// objectErr sorts how reading an object ended: a missing topic stops the
// run; anything after stop ended is the stop (errStopped), not a fault of
// the object; a corrupt stream or another failure is recorded in the state.
func (r *Runner) objectErr(log zerolog.Logger, id string, stop context.Context, err error) error {
	var streamErr *envelope.StreamError
	switch {
	case err == nil || errors.Is(err, sink.ErrTopicMissing):
		return err
	case stop.Err() != nil:
		if !errors.Is(err, errStopped) {
			log.Debug().Err(err).Msg("object cut short by the stop")
		}
		return errors.Join(errStopped, err)
	case errors.Is(err, ErrObjectReplaced):
		log.Error().Err(err).Msg("the object was replaced (another version): what was read before is delivered and recorded; --restart replays everything again")
		r.state.Fail(id, err.Error())
		return fmt.Errorf("%w; --restart replays everything again", err)
	case errors.As(err, &streamErr) && errors.Is(err, envelope.ErrUnread):
		log.Error().Int64("line", streamErr.Line).Int64("offset", streamErr.Offset).Err(streamErr.Err).
			Msg("reading the object failed; what was read before is delivered and recorded, a rerun reads on from there")
		r.state.Fail(id, streamErr.Error())
		return fmt.Errorf("reading failed at line %d, offset %d: %w", streamErr.Line, streamErr.Offset, streamErr.Err)
	case errors.As(err, &streamErr):
		log.Error().Int64("line", streamErr.Line).Int64("offset", streamErr.Offset).Err(streamErr.Err).Msg("object is corrupt; its good prefix was delivered")
		r.state.Fail(id, streamErr.Error())
		return fmt.Errorf("corrupt at line %d, offset %d: %w", streamErr.Line, streamErr.Offset, streamErr.Err)
	}
	log.Error().Err(err).Msg("object failed")
	r.state.Fail(id, err.Error())
	return err
}

// stopReader ends reads once stop ended; with rc closed when it ends, a
// read blocked on a FIFO or a stalled stream returns too.
type stopReader struct {
	stop context.Context
	r    io.Reader
}

func (s stopReader) Read(p []byte) (int, error) {
	if s.stop.Err() != nil {
		return 0, errStopped
	}
	n, err := s.r.Read(p)
	if err != nil && s.stop.Err() != nil {
		return n, errStopped
	}
	return n, err
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
