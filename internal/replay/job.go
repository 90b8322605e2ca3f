package replay

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Job is one replay, as `consumer replay` and `consumer stream --backfill`
// run it: which exports (URLs), which window, how to read them, where its
// progress is kept. Zero fields take the defaults in their comments.
type Job struct {
	// URLs are s3://bucket/prefix, gs://bucket/prefix or directories.
	URLs   []string
	Window Window
	// Layout: LayoutAuto (default, "") finds it from the folders.
	Layout Layout
	// Format: FormatAuto (default, "") takes the layout's.
	Format envelope.Format
	// Tenant for events that carry none; default from a fulfillmenttools
	// bucket or path (TenantFromLocation).
	Tenant string
	// Lateness: how long after an event occurred its object may still be
	// filed under a later folder; AutoLateness uses the layout's.
	Lateness time.Duration
	// Concurrency, InFlight, BatchSize, RateLimit, MaxEventSize,
	// MaxRecordSize, DrainTimeout: see Options.
	Concurrency, InFlight, BatchSize int
	RateLimit                        float64
	MaxEventSize, MaxRecordSize      int
	DrainTimeout                     time.Duration
	// State is the progress file. "" picks one in the user's state
	// directory named after the replay (see StatePath); NoState keeps
	// progress in memory only (a dry run to stdout).
	State   string
	Restart bool
	// ProgressTimeout: how long the run may make no progress before it
	// warns (default DefaultStallAfter).
	ProgressTimeout time.Duration
	// ReadStall: how long one read of an object may wait for bytes before
	// it is resumed on a new connection (Options.ReadStall).
	ReadStall time.Duration
	// Target names where the events go (sink type, brokers, topics). It is
	// part of the replay's identity: progress made toward one target is
	// never taken for another's.
	Target string
	// Partition makes the job one part of a replay split over several
	// processes: it reads only the objects PartOf assigns to it. The part
	// is part of the replay's identity (each part has its own state).
	// Default (zero): the whole replay.
	Partition Partition

	// AWS and Role open S3 buckets; GCSKeyFile GCS ones (default:
	// application default credentials).
	AWS        assumerole.Config
	Role       assumerole.Role
	GCSKeyFile string
	// Getenv finds the state directory (XDG_STATE_HOME, HOME).
	Getenv   func(string) string
	Log      zerolog.Logger
	Registry prometheus.Registerer
	// Progress receives progress lines; TTY redraws one line in place.
	Progress io.Writer
	TTY      bool
}

// NoState keeps a job's progress in memory only.
const NoState = "-"

// ErrInvalid is matched (errors.Is) by errors in a job's settings or in
// what its URLs name (a fulfillmenttools export with no tenant, a state
// file of another replay).
var ErrInvalid = errors.New("invalid replay")

type invalidError struct{ err error }

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{fmt.Errorf(format, args...)}
}

// NothingToReplay says a replay found nothing to send for its window: no
// object matched the layout and window, or the objects read held no event
// in the window and no earlier run (per the state) delivered any.
type NothingToReplay struct{ Detail string }

func (e *NothingToReplay) Error() string { return "nothing to replay: " + e.Detail }

// Planned is what planning a job's URLs found.
type Planned struct {
	Sources []Source
	// Where is each URL's location (directories absolute): with the window
	// and the settings that shape the output it names the replay in the
	// state file.
	Where []string
	// Found says, per URL, the layout and what it holds for the window.
	Found []string
	// Lines describe each source and its objects, for a dry run.
	Lines []string
}

// Plan lists what the job would read, without reading it. Objects named by
// two URLs (a directory given twice, spelled differently) are read once.
// A part (Partition) keeps the objects assigned to it, after that: every
// part sees the same first occurrence of an object.
func (j *Job) Plan(ctx context.Context) (*Planned, error) {
	if err := j.Partition.validate(); err != nil {
		return nil, &invalidError{err}
	}
	p := &Planned{}
	seen := map[string]bool{}
	listed, n := 0, 0
	for _, u := range j.URLs {
		src, up, err := j.planURL(ctx, u)
		if err != nil {
			return nil, err
		}
		objs := src.Objects[:0]
		for _, o := range src.Objects {
			if id := src.Store.Name() + "/" + o.Key; !seen[id] {
				seen[id] = true
				up.listed++
				if j.Partition.Has(o.Key) {
					objs = append(objs, o)
				}
			}
		}
		src.Objects = objs
		listed += up.listed
		n += len(objs)
		j.describe(p, u, up, src)
		p.Sources = append(p.Sources, src)
		p.Where = append(p.Where, up.where())
	}
	if listed == 0 {
		return p, &NothingToReplay{fmt.Sprintf("no object matched the window %s (%s); check --layout, --from and --to, or run with --dry-run", j.Window, strings.Join(p.Found, "; "))}
	}
	if n == 0 {
		log := j.logger()
		log.Warn().Int("objects_listed", listed).Msg("this part has no object: the other parts read them all")
	}
	return p, nil
}

// urlPlan is what planning one URL found.
type urlPlan struct {
	loc    Location
	layout Layout
	format envelope.Format
	tenant string
	late   time.Duration
	// matched counts the objects of the layout and window under the URL;
	// listed those no earlier URL named (before the partition keeps its
	// part).
	matched int
	listed  int
}

// where names the URL's part of the replay in the state file.
func (u urlPlan) where() string {
	return u.loc.String() + "|" + string(u.layout) + "|" + string(u.format) + "|" + u.tenant + "|" + u.late.String()
}

// planURL plans one URL: its source and what it found.
func (j *Job) planURL(ctx context.Context, u string) (Source, urlPlan, error) {
	loc, err := ParseLocation(u)
	if err != nil {
		return Source{}, urlPlan{}, &invalidError{err}
	}
	if loc.Scheme == "file" {
		if loc.Bucket, err = filepath.Abs(loc.Bucket); err != nil {
			return Source{}, urlPlan{}, invalid("resolving %s: %w", u, err)
		}
	}
	store, err := j.openStore(ctx, loc)
	if err != nil {
		return Source{}, urlPlan{}, err
	}
	late := j.Lateness
	log := j.logger()
	log.Info().Str("source", loc.String()).Msg("listing")
	watched := newListWatch(store)
	stopWatch := watched.watch(loc.String(), j.ProgressTimeout, log)
	found, objs, err := Plan(ctx, watched, loc.Prefix, j.Layout, j.Window, late)
	stopWatch()
	if err != nil {
		return Source{}, urlPlan{}, fmt.Errorf("planning %s: %w", loc, err)
	}
	if late < 0 {
		late = found.DefaultLateness()
	}
	format := j.Format
	if format == "" || format == envelope.FormatAuto {
		format = found.DefaultFormat()
	}
	tenant, err := j.sourceTenant(loc, found, format)
	if err != nil {
		return Source{}, urlPlan{}, err
	}
	return Source{Store: store, Objects: objs, Format: format, Tenant: tenant}, urlPlan{loc: loc, layout: found, format: format, tenant: tenant, late: late, matched: len(objs)}, nil
}

// describe logs what a URL's plan holds and adds it to p's Found and
// Lines (a part's own objects only).
func (j *Job) describe(p *Planned, u string, up urlPlan, src Source) {
	var size int64
	for _, o := range src.Objects {
		size += o.Size
	}
	part := ""
	if j.Partition.Split() {
		part = fmt.Sprintf(" (part %s of %d objects)", j.Partition, up.listed)
	}
	log := j.logger()
	log.Info().Str("source", up.loc.String()).Str("layout", string(up.layout)).Str("format", string(up.format)).Str("tenant", up.tenant).
		Str("lateness", up.late.String()).Str("window", j.Window.String()).Int("objects", len(src.Objects)).Int64("bytes", size).Msg("planned")
	if up.matched == 0 {
		log.Warn().Str("source", up.loc.String()).Str("layout", string(up.layout)).Str("window", j.Window.String()).Msg("no object matched the layout and window")
	}
	p.Found = append(p.Found, fmt.Sprintf("%s: layout %s, %d objects%s", u, up.layout, len(src.Objects), part))
	p.Lines = append(p.Lines, fmt.Sprintf("# %s: layout %s, format %s, tenant %q, lateness %s, %d objects, %d bytes%s", up.loc, up.layout, up.format, up.tenant, up.late, len(src.Objects), size, part))
	for _, o := range src.Objects {
		p.Lines = append(p.Lines, fmt.Sprintf("%s/%s\t%d", src.Store.Name(), o.Key, o.Size))
	}
}

// logger is the job's logger, naming the part of a split replay
// ("partition": "i/n").
func (j *Job) logger() zerolog.Logger {
	if !j.Partition.Split() {
		return j.Log
	}
	return j.Log.With().Str("partition", j.Partition.String()).Logger()
}

// sourceTenant is the job's tenant, or the fulfillmenttools tenant named
// by the location. A fulfillmenttools export whose location names none is
// invalid: its events carry no tenant, and guessing one from whatever the
// directory is called would mislabel them.
func (j *Job) sourceTenant(loc Location, layout Layout, format envelope.Format) (string, error) {
	if j.Tenant != "" {
		return j.Tenant, nil
	}
	tenant, err := TenantFromLocation(loc)
	if err != nil {
		return "", &invalidError{err}
	}
	if tenant == "" && (layout == LayoutDaily || format == envelope.FormatFulfillmenttools) {
		return "", invalid("%s: no tenant for the fulfillmenttools export: no bucket or path component is named <tenant>-<tier>-public-events-export-bucket (as `gsutil cp -r gs://ocff-<tenant>-<tier>-public-events-export-bucket ./` makes it); give --tenant", loc)
	}
	return tenant, nil
}

// openStore connects to the location's store.
func (j *Job) openStore(ctx context.Context, loc Location) (Store, error) {
	switch loc.Scheme {
	case "s3":
		cfg, _, err := assumerole.Load(ctx, j.AWS, j.Role)
		if err != nil {
			return nil, fmt.Errorf("aws.replay_role: %w", err)
		}
		return S3Store{Client: NewS3Client(cfg, j.AWS.EndpointFor(assumerole.ServiceS3)), Bucket: loc.Bucket,
			BodyHTTP: BodyHTTPClient(cfg, storeHeaderTimeout)}, nil
	case "gs":
		hc, endpoint, err := NewGCSClient(ctx, j.GCSKeyFile)
		if err != nil {
			return nil, err
		}
		return GCSStore{HTTP: hc, Endpoint: endpoint, Bucket: loc.Bucket}, nil
	}
	if st, err := os.Stat(loc.Bucket); err != nil || !st.IsDir() {
		return nil, invalid("%s is not a directory", loc.Bucket)
	}
	return DirStore{Root: loc.Bucket, Log: j.logger()}, nil
}

// StatePath is the job's progress file: State, or a file named after the
// replay — its locations, window, layout, format, tenant, lateness and
// target — in the user's state directory: $XDG_STATE_HOME/eventrelay/ or
// ~/.local/state/eventrelay/ (created 0700), never the working directory,
// where it would end up committed.
func (j *Job) StatePath(p *Planned) (string, error) {
	switch j.State {
	case NoState:
		return "", nil
	case "":
	default:
		return j.State, nil
	}
	getenv := j.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	base := getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) { // the XDG spec: a relative path is invalid
		home := getenv("HOME")
		if home == "" {
			return "", invalid("no directory for the replay state: set XDG_STATE_HOME or HOME, or give --state")
		}
		base = filepath.Join(home, ".local", "state")
	}
	dir := filepath.Join(base, "eventrelay")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", invalid("creating the replay state directory: %w", err)
	}
	h := sha1.Sum([]byte(strings.Join(j.identity(p), "\n")))
	name := "replay-" + hex.EncodeToString(h[:6])
	if j.Partition.Split() {
		name += fmt.Sprintf("-part-%d-of-%d", j.Partition.Index, j.Partition.Count)
	}
	return filepath.Join(dir, name+".json"), nil
}

// identity names the replay in its state file: what it reads, and where
// and how the events go; for a part of a split replay, which part (so
// parts never share progress, and a part never takes the whole replay's).
func (j *Job) identity(p *Planned) []string {
	id := append(append([]string{}, p.Where...), "window "+j.Window.String(), "target "+j.Target)
	if j.Partition.Split() {
		id = append(id, "partition "+j.Partition.String()+" by FNV-1a of the key")
	}
	return id
}

// Run plans the job and replays it into s, keeping progress in the state
// file, and logs a summary. It returns a *NothingToReplay when nothing
// matched, unless the state says an earlier run delivered from the objects
// (a finished replay rerun succeeds; an empty one fails again).
func (j *Job) Run(ctx context.Context, s sink.Sink) (Summary, error) {
	p, err := j.Plan(ctx)
	if err != nil {
		return Summary{}, err
	}
	path, err := j.StatePath(p)
	if err != nil {
		return Summary{}, err
	}
	unlock, err := lockState(path)
	if err != nil {
		return Summary{}, &invalidError{err}
	}
	defer unlock()
	log := j.logger()
	log.Info().Str("state", path).Bool("restart", j.Restart).Msg("replay state")
	state, err := LoadState(path, j.identity(p), j.Window, j.Restart)
	if err != nil {
		return Summary{}, &invalidError{err}
	}
	r := NewRunner(Options{Window: j.Window, Tenant: j.Tenant, Concurrency: j.Concurrency, InFlight: j.InFlight,
		BatchSize: j.BatchSize, RateLimit: j.RateLimit, MaxEventSize: j.MaxEventSize, MaxRecordSize: j.MaxRecordSize,
		DrainTimeout: j.DrainTimeout, ReadStall: j.ReadStall}, s, state, log)
	r.Progress.Partition = j.Partition.String()
	r.Progress.Register(j.Registry)
	r.Progress.StallAfter = j.ProgressTimeout
	r.Metrics = pipeline.NewMetrics(j.Registry)
	progCtx, stopProg := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		out := j.Progress
		if out == nil {
			out = io.Discard
		}
		r.Progress.Report(progCtx, out, j.TTY, log)
		close(done)
	}()
	sum, runErr := r.Run(ctx, p.Sources)
	stopProg()
	<-done
	if gone := unlisted(state, p.Sources); len(gone) > 0 && ctx.Err() == nil {
		// Partly delivered by an earlier run and not listed now: the rest
		// of their events cannot be replayed; say so rather than finish.
		log.Error().Strs("objects", gone[:min(len(gone), 10)]).Int("count", len(gone)).
			Msg("objects partly delivered by an earlier run are no longer listed (deleted or moved): the rest of their events cannot be replayed; --restart replays everything again")
		for _, id := range gone {
			sum.Failed++
			sum.Failures = append(sum.Failures, id+": partly delivered by an earlier run, no longer listed")
		}
		if runErr == nil {
			runErr = fmt.Errorf("%d object(s) partly delivered by an earlier run are no longer listed: %v", len(gone), gone[:min(len(gone), 10)])
		}
	}
	j.logSummary(ctx, log, sum, runErr, path)
	if runErr == nil && sum.Events == 0 && sum.Dead == 0 && sum.Earlier == 0 {
		nothing := &NothingToReplay{fmt.Sprintf("%d object(s) read, none held an event in the window %s (%s)", sum.Objects, j.Window, strings.Join(p.Found, "; "))}
		if j.Partition.Split() {
			// The other parts may deliver: only all of them together can
			// say the replay had nothing to send.
			log.Warn().Str("detail", nothing.Detail).Msg("this part delivered nothing; the other parts may")
			return sum, nil
		}
		return sum, nothing
	}
	return sum, runErr
}

// unlisted are the objects the state has in progress that no source lists.
func unlisted(state *State, sources []Source) []string {
	listed := map[string]bool{}
	for _, src := range sources {
		for _, o := range src.Objects {
			listed[src.Store.Name()+"/"+o.Key] = true
		}
	}
	var gone []string
	for _, id := range state.InProgress() {
		if !listed[id] {
			gone = append(gone, id)
		}
	}
	return gone
}

// logSummary logs how the run ended: "replay finished", "replay
// interrupted" (ctx ended: what was read was delivered and recorded) or
// "replay stopped" (a topic is missing).
func (j *Job) logSummary(ctx context.Context, log zerolog.Logger, s Summary, runErr error, statePath string) {
	msg, ev := "replay finished", log.Info()
	switch {
	case ctx.Err() != nil:
		msg = "replay interrupted"
	case errors.Is(runErr, sink.ErrTopicMissing):
		msg, ev = "replay stopped", log.Error()
	case s.Failed > 0 && s.Objects+s.Skipped == 0:
		msg, ev = "replay failed: no object could be read to the end (each object's error says what to do: a rerun reads on, a replaced object needs --restart)", log.Error()
	case s.Failed > 0:
		msg, ev = "replay finished; some objects failed (each object's error says what to do: a rerun reads on, a replaced object needs --restart)", log.Error()
	}
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Events) / s.Elapsed.Seconds()
	}
	ev.Int("objects", s.Objects).Int("objects_already_done", s.Skipped).Int("objects_failed", s.Failed).
		Int64("events", s.Events).Int64("dead_letters", s.Dead).Int64("outside_window", s.Outside).Int64("bytes", s.Bytes).
		Str("elapsed", s.Elapsed.Round(time.Millisecond).String()).Float64("events_per_s", rate).Str("state", statePath).Msg(msg)
}
