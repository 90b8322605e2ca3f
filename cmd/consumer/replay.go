package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/replay"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const replayHelp = `Usage: consumer replay [flags] URL...

Replays historical exports through the same pipeline as the live stream, so a
replayed event becomes the same Kafka message as the live one (only the
source-position header differs). URL is s3://bucket/prefix, gs://bucket/prefix
or a local directory. The layout is found from the folders (or --layout):
  firehose  OneWelcome Firehose: [<category>/]YYYY/MM/DD/HH/... (UTC hour of
            arrival); the hours from one before --from to --lateness past --to
  daily     fulfillmenttools: YYYY-MM-DD/*.json.gz; the days of the window and
            --lateness past --to
  infobip   <requestId>-events-<start>-<end>.json.gz, selected by those times
            (widened by --lateness before <start>)
  flat      every object under the prefix
Events are kept when --from <= occurred_at < --to, so consecutive windows
([09,11) then [11,13)) deliver exactly what one window [09,13) does, provided
no event is filed more than --lateness after it occurred.

fulfillmenttools events carry no tenant: it is --tenant, or read from the
bucket name ({tenant}-{tier}-public-events-export-bucket, optionally ocff-...)
or, for a directory, from the path component so named (a copy made with
gsutil cp -r gs://ocff-<tenant>-<tier>-public-events-export-bucket ./). When
neither gives one, the replay stops (exit 2) rather than guess.

Progress is kept in a state file after every acknowledged batch (--state;
default in $XDG_STATE_HOME/eventrelay/ or ~/.local/state/eventrelay/): rerun
the same command to resume an interrupted replay; a finished one is not
repeated unless --restart is given.

Examples:
  consumer replay --from 2024-02-01 --to 2024-02-03 s3://onewelcome-export/public/
  consumer replay gs://ocff-acme-prd-public-events-export-bucket/ --from 2024-02-01T00 --to 2024-02-02
  consumer replay --dry-run ./exports
  consumer replay --sink stdout ./exports | jq .type

Exit codes: 0 everything replayed (a rerun of a finished replay too);
1 "nothing to replay": no object matched the layout and window, or the
objects read held no event in the window and no earlier run (per the state)
delivered any; the message names each URL, its layout and the window. Also 1
when an object could not be read to its end (the others were replayed) or the
run failed; 2 usage or configuration error (including a fulfillmenttools
export with no tenant); 3 AWS refused the credentials; 4 a Kafka topic is
missing and was not created (the state keeps only what was delivered: rerun
once the topic exists).

Flags:
`

type replayFlags struct {
	common              commonFlags
	from, to            string
	layout, format      string
	tenant, stateFile   string
	lateness            string
	concurrency         int
	rate                float64
	restart, dryRun     bool
	gcsKeyFile          string
	maxEvent, maxRecord int
}

func runReplay(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f replayFlags
	f.common.register(fs, getenv)
	fs.StringVar(&f.from, "from", "", "keep events at or after this time (UTC)")
	fs.StringVar(&f.to, "to", "", "keep events before this time (UTC)")
	fs.StringVar(&f.layout, "layout", "auto", "auto, firehose, daily, infobip or flat")
	fs.StringVar(&f.format, "format", "auto", "event format; auto takes the layout's (onewelcome, fulfillmenttools, infobip) or sniffs each record")
	fs.StringVar(&f.tenant, "tenant", "", "tenant for exports whose events carry none (default: from a fulfillmenttools bucket name or a path component so named; required for fulfillmenttools otherwise)")
	fs.StringVar(&f.lateness, "lateness", "auto", "how long after an event occurred it may be filed under a later folder; auto: the layout's (firehose 1h, daily 24h, infobip 1h)")
	fs.IntVar(&f.concurrency, "concurrency", 4, "objects read at once")
	fs.Float64Var(&f.rate, "rate", 0, "most events per second (0: no limit), so a backfill does not starve live consumers")
	fs.StringVar(&f.stateFile, "state", "", "progress file (default $XDG_STATE_HOME/eventrelay/replay-<hash of URLs and window>.json, or under ~/.local/state/eventrelay/)")
	fs.BoolVar(&f.restart, "restart", false, "ignore earlier progress and replay everything again")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list the objects that would be read, and stop")
	fs.StringVar(&f.gcsKeyFile, "gcs-key-file", getenv("GOOGLE_APPLICATION_CREDENTIALS"), "GCS service-account key file (default: application default credentials)")
	fs.IntVar(&f.maxEvent, "max-event-size", envelope.DefaultMaxEventSize, "reject events larger than this many bytes")
	fs.IntVar(&f.maxRecord, "max-record-size", envelope.DefaultMaxRecordSize, "reject records larger than this many bytes")
	fs.Usage = func() {
		fmt.Fprint(io.err, replayHelp)
		fs.PrintDefaults()
	}
	urls, err := app.ParseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := replayCmd(ctx, f, urls, io, getenv); err != nil {
		fmt.Fprintf(io.err, "consumer replay: %v\n", err)
		return exitFor(err)
	}
	return exitOK
}

func replayCmd(ctx context.Context, f replayFlags, urls []string, io stdio, getenv func(string) string) error {
	if len(urls) == 0 {
		return &app.ConfigError{Err: errors.New("give at least one URL (s3://bucket/prefix, gs://bucket/prefix or a directory); see --help")}
	}
	var w replay.Window
	var err error
	if f.from != "" {
		if w.From, err = replay.ParseTime(f.from); err != nil {
			return &app.ConfigError{Err: fmt.Errorf("--from: %w", err)}
		}
	}
	if f.to != "" {
		if w.To, err = replay.ParseTime(f.to); err != nil {
			return &app.ConfigError{Err: fmt.Errorf("--to: %w", err)}
		}
	}
	if !w.From.IsZero() && !w.To.IsZero() && !w.From.Before(w.To) {
		return &app.ConfigError{Err: errors.New("--from must be before --to")}
	}
	if _, err := replay.ParseLayout(f.layout); err != nil {
		return &app.ConfigError{Err: fmt.Errorf("--layout: %w", err)}
	}
	if _, err := envelope.ParseFormat(f.format); err != nil {
		return &app.ConfigError{Err: fmt.Errorf("--format: %w", err)}
	}
	if _, err := parseLateness(f.lateness); err != nil {
		return &app.ConfigError{Err: fmt.Errorf("--lateness: %w", err)}
	}
	cfg, err := f.common.load(getenv)
	if err == nil && !f.dryRun {
		err = cfg.Validate()
	}
	if err != nil {
		return &app.ConfigError{Err: fmt.Errorf("configuration: %w", err)}
	}
	log, err := app.Logger(cfg, io.err)
	if err != nil {
		return &app.ConfigError{Err: err}
	}
	env := replayEnv{aws: cfg.AWS.Config, role: cfg.AWS.ReplayRole, io: io, log: log, getenv: getenv}
	if f.dryRun {
		_, err := planReplay(ctx, f, urls, w, env)
		return err
	}
	srv, err := app.StartOps(ctx, cfg, "", log)
	if err != nil {
		return &app.ConfigError{Err: err}
	}
	s, err := app.BuildSink(ctx, cfg, io.out, log, srv.Registry())
	if err != nil {
		return err
	}
	defer s.Close()
	srv.SetReady(func() error { return nil })
	env.reg = srv.Registry()
	_, err = replayRun(ctx, f, urls, w, s, env)
	return err
}

// replayEnv is what a replay takes from its process.
type replayEnv struct {
	aws    assumerole.Config
	role   assumerole.Role
	io     stdio
	log    zerolog.Logger
	reg    prometheus.Registerer
	getenv func(string) string
}

// replayRun plans and replays urls into s, keeping progress in the state
// file, and logs a summary. It returns a *nothingToReplay when nothing
// matched: no object, or objects with no event in the window, unless the
// state says an earlier run delivered from them (a finished replay rerun
// succeeds; an empty one fails again).
func replayRun(ctx context.Context, f replayFlags, urls []string, w replay.Window, s sink.Sink, env replayEnv) (replay.Summary, error) {
	plan, err := planReplay(ctx, f, urls, w, env)
	if err != nil {
		return replay.Summary{}, err
	}
	statePath, err := replayStatePath(f.stateFile, plan.where, w, env.getenv)
	if err != nil {
		return replay.Summary{}, err
	}
	env.log.Info().Str("state", statePath).Bool("restart", f.restart).Msg("replay state")
	state, err := replay.LoadState(statePath, plan.where, w, f.restart)
	if err != nil {
		return replay.Summary{}, &app.ConfigError{Err: err}
	}
	r := replay.NewRunner(replay.Options{Window: w, Tenant: f.tenant, Concurrency: f.concurrency, RateLimit: f.rate,
		MaxEventSize: f.maxEvent, MaxRecordSize: f.maxRecord}, s, state, env.log)
	r.Progress.Register(env.reg)
	r.Metrics = pipeline.NewMetrics(env.reg)
	progCtx, stopProg := context.WithCancel(ctx)
	tty := false
	if fd, ok := env.io.err.(*os.File); ok {
		tty = isatty.IsTerminal(fd.Fd())
	}
	done := make(chan struct{})
	go func() {
		r.Progress.Report(progCtx, env.io.err, tty, env.log)
		close(done)
	}()
	sum, runErr := r.Run(ctx, plan.sources)
	stopProg()
	<-done
	logSummary(env.log, sum, statePath)
	if runErr == nil && sum.Events == 0 && sum.Dead == 0 && sum.Earlier == 0 {
		return sum, &nothingToReplay{fmt.Sprintf("%d object(s) read, none held an event in the window %s (%s)", sum.Objects, w, strings.Join(plan.found, "; "))}
	}
	return sum, runErr
}

func logSummary(log zerolog.Logger, s replay.Summary, statePath string) {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Events) / s.Elapsed.Seconds()
	}
	log.Info().Int("objects", s.Objects).Int("objects_already_done", s.Skipped).Int("objects_failed", s.Failed).
		Int64("events", s.Events).Int64("dead_letters", s.Dead).Int64("outside_window", s.Outside).Int64("bytes", s.Bytes).
		Dur("elapsed", s.Elapsed).Float64("events_per_s", rate).Str("state", statePath).Msg("replay finished")
}

// openStore connects to the location's store.
func openStore(ctx context.Context, loc replay.Location, aws assumerole.Config, role assumerole.Role, gcsKeyFile string) (replay.Store, error) {
	switch loc.Scheme {
	case "s3":
		cfg, _, err := assumerole.Load(ctx, aws, role)
		if err != nil {
			return nil, fmt.Errorf("aws.replay_role: %w", err)
		}
		return replay.S3Store{Client: replay.NewS3Client(cfg, aws.EndpointFor(assumerole.ServiceS3)), Bucket: loc.Bucket}, nil
	case "gs":
		c, err := replay.NewGCSClient(ctx, gcsKeyFile)
		if err != nil {
			return nil, err
		}
		return replay.GCSStore{Client: c, Bucket: loc.Bucket}, nil
	}
	if st, err := os.Stat(loc.Bucket); err != nil || !st.IsDir() {
		return nil, &app.ConfigError{Err: fmt.Errorf("%s is not a directory", loc.Bucket)}
	}
	return replay.DirStore{Root: loc.Bucket}, nil
}
