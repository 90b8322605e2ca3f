package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/replay"
	"github.com/mattn/go-isatty"
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

Progress is kept in a state file as batches are acknowledged (--state;
default in $XDG_STATE_HOME/eventrelay/ or ~/.local/state/eventrelay/): rerun
the same command to resume an interrupted replay; a finished one is not
repeated unless --restart is given. Only one replay at a time may use a state
file: a second one is refused (exit 2). The first SIGINT/SIGTERM stops reading
and delivers and records what was read (up to --drain-timeout); a second
signal exits at once. Non-regular files (FIFOs, sockets) in a directory are
skipped with a warning.

A long replay can be split over several processes or pods with --partition
i/n (0 <= i < n): part i reads only the objects whose key (within its bucket
or directory) hashes to i modulo n (FNV-1a), whatever the listing order and
however the export grows, so the n parts together read every object once.
Each part has its own state (the partition is part of the replay's identity):
rerun part i to resume it alone. --partition index/n takes i from
$JOB_COMPLETION_INDEX, as each pod of a Kubernetes Indexed Job has it (the
Helm chart's replay.parallelism). Events keep their order within an object,
as with --concurrency; objects are not ordered among themselves either way.

Examples:
  consumer replay --from 2024-02-01 --to 2024-02-03 s3://onewelcome-export/public/
  consumer replay gs://ocff-acme-prd-public-events-export-bucket/ --from 2024-02-01T00 --to 2024-02-02
  consumer replay --dry-run ./exports
  consumer replay --partition 1/3 s3://onewelcome-export/public/   # the second of three parts
  consumer replay --sink stdout ./exports | jq .type

Exit codes: 0 everything replayed (a rerun of a finished replay too);
1 "nothing to replay": no object matched the layout and window, or the
objects read held no event in the window and no earlier run (per the state)
delivered any (for a part of a split replay, only the former: its objects
may be few or none); the message names each URL, its layout and the
window. Also 1 when an object could not be read to its end (the others were
replayed) or the run failed; 2 usage or configuration error (including a fulfillmenttools
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
	progressTimeout     time.Duration
	readStall           time.Duration
	concurrency         int
	rate                float64
	restart, dryRun     bool
	gcsKeyFile          string
	maxEvent, maxRecord int
	drain               time.Duration
	partition           string
}

func runReplay(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f replayFlags
	f.common.register(fs, getenv, io.environ)
	fs.StringVar(&f.from, "from", "", "keep events at or after this time: a UTC date (2024-02-01), hour (2024-02-01T09) or RFC 3339 time")
	fs.StringVar(&f.to, "to", "", "keep events before this time (same forms as --from)")
	fs.StringVar(&f.layout, "layout", "auto", "auto, firehose, daily, infobip or flat")
	fs.StringVar(&f.format, "format", "auto", "event format; auto takes the layout's (onewelcome, fulfillmenttools, infobip) or sniffs each record")
	fs.StringVar(&f.tenant, "tenant", "", "tenant for exports whose events carry none (default: from a fulfillmenttools bucket name or a path component so named; required for fulfillmenttools otherwise)")
	fs.DurationVar(&f.progressTimeout, "progress-timeout", replay.DefaultStallAfter, "warn (and show in eventrelay_replay_seconds_since_progress) when nothing is read or delivered for this long (0 takes the default)")
	fs.StringVar(&f.lateness, "lateness", "auto", "how long after an event occurred it may be filed under a later folder, a duration such as 2h or 90m; auto: the layout's (firehose 1h, daily 24h, infobip 1h)")
	fs.IntVar(&f.concurrency, "concurrency", 4, "objects read at once (0 takes the default)")
	fs.Float64Var(&f.rate, "rate", 0, "most events per second (0: no limit), so a backfill does not starve live consumers")
	fs.StringVar(&f.stateFile, "state", "", "progress file (default $XDG_STATE_HOME/eventrelay/replay-<hash of URLs and window>[-part-<i>-of-<n>].json, or under ~/.local/state/eventrelay/)")
	fs.BoolVar(&f.restart, "restart", false, "ignore earlier progress and replay everything again")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list the objects that would be read (only the part's, with --partition), and stop")
	fs.StringVar(&f.partition, "partition", "", "read only part i of n of the objects: i/n (0 <= i < n), or index/n for i from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); each part keeps its own state (default: the whole replay)")
	fs.StringVar(&f.gcsKeyFile, "gcs-key-file", "", "GCS service-account key file, e.g. the one fulfillmenttools hands out; no other credential type is accepted (default: application default credentials — GOOGLE_APPLICATION_CREDENTIALS, workload identity)")
	fs.IntVar(&f.maxEvent, "max-event-size", envelope.DefaultMaxEventSize, "reject events larger than this many bytes")
	fs.IntVar(&f.maxRecord, "max-record-size", envelope.DefaultMaxRecordSize, "reject records larger than this many bytes")
	fs.DurationVar(&f.readStall, "read-stall", replay.DefaultReadStall, "how long one read of an S3/GCS object may wait for bytes before the connection is dropped and the read goes on from the same byte on a new one (0 takes the default)")
	fs.DurationVar(&f.drain, "drain-timeout", replay.DefaultDrainTimeout, "on SIGINT/SIGTERM, how long what was read may take to be delivered and recorded (reading stops at once; a second signal exits; 0 takes the default)")
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
		if !errors.As(err, new(reportedError)) {
			fmt.Fprintf(io.err, "consumer replay: %v\n", err)
		}
		return exitFor(err)
	}
	return exitOK
}

func replayCmd(ctx context.Context, f replayFlags, urls []string, io stdio, getenv func(string) string) error {
	cfg, job, err := f.job(urls, getenv)
	if err != nil {
		return &app.ConfigError{Err: err}
	}
	log, err := app.Logger(cfg, io.err)
	if err != nil {
		return &app.ConfigError{Err: err}
	}
	if err := replayWith(ctx, f, cfg, job, log, io); err != nil {
		// Once there is a logger, the error is a log line like the others
		// (JSON when the logs are), not plain text after them.
		log.Error().Err(err).Msg("replay failed")
		return reportedError{err}
	}
	return nil
}

// reportedError is an error already logged; the command only exits with
// its code.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// replayWith runs the job (or its dry run) with its logger.
func replayWith(ctx context.Context, f replayFlags, cfg config.Config, job *replay.Job, log zerolog.Logger, io stdio) error {
	job.Log = log
	if fd, ok := io.err.(*os.File); ok {
		job.Progress, job.TTY = io.err, isatty.IsTerminal(fd.Fd())
	}
	if f.dryRun {
		p, err := job.Plan(ctx)
		if p != nil {
			fmt.Fprintln(io.out, strings.Join(p.Lines, "\n"))
		}
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
	job.Registry = srv.Registry()
	_, err = job.Run(ctx, s)
	return err
}

// job checks the flags and the configuration and turns them into a replay
// job (logger and registry still to set).
func (f replayFlags) job(urls []string, getenv func(string) string) (config.Config, *replay.Job, error) {
	if len(urls) == 0 {
		return config.Config{}, nil, errors.New("give at least one URL (s3://bucket/prefix, gs://bucket/prefix or a directory); see --help")
	}
	j := &replay.Job{URLs: urls, Tenant: f.tenant, Concurrency: f.concurrency, RateLimit: f.rate, State: f.stateFile,
		Restart: f.restart, ProgressTimeout: f.progressTimeout, GCSKeyFile: f.gcsKeyFile, MaxEventSize: f.maxEvent, MaxRecordSize: f.maxRecord, DrainTimeout: f.drain, ReadStall: f.readStall, Getenv: getenv}
	var err error
	if j.Partition, err = replay.ParsePartition(f.partition, getenv); err != nil {
		return config.Config{}, nil, fmt.Errorf("--partition %w", err)
	}
	if f.from != "" {
		if j.Window.From, err = replay.ParseTime(f.from); err != nil {
			return config.Config{}, nil, fmt.Errorf("--from: %w", err)
		}
	}
	if f.to != "" {
		if j.Window.To, err = replay.ParseTime(f.to); err != nil {
			return config.Config{}, nil, fmt.Errorf("--to: %w", err)
		}
	}
	if !j.Window.From.IsZero() && !j.Window.To.IsZero() && !j.Window.From.Before(j.Window.To) {
		return config.Config{}, nil, errors.New("--from must be before --to")
	}
	if j.Layout, err = replay.ParseLayout(f.layout); err != nil {
		return config.Config{}, nil, fmt.Errorf("--layout: %w", err)
	}
	if j.Format, err = envelope.ParseFormat(f.format); err != nil {
		return config.Config{}, nil, fmt.Errorf("--format: %w", err)
	}
	if j.Lateness, err = replay.ParseLateness(f.lateness); err != nil {
		return config.Config{}, nil, fmt.Errorf("--lateness: %w", err)
	}
	if err := checkSizeFlags(f.maxEvent, f.maxRecord); err != nil {
		return config.Config{}, nil, err
	}
	if err := f.checkLimits(); err != nil {
		return config.Config{}, nil, err
	}
	cfg, err := f.common.load(getenv)
	if err == nil && !f.dryRun {
		err = configTargets["replay"].check(cfg)
	}
	if err != nil {
		return cfg, nil, fmt.Errorf("configuration: %w", err)
	}
	j.AWS, j.Role, j.Target = cfg.AWS.Config, cfg.AWS.ReplayRole, target(cfg)
	if cfg.SinkType() == "stdout" && j.State == "" {
		j.State = replay.NoState // a preview records no progress
	}
	return cfg, j, nil
}

// checkLimits refuses negative counts, rates and durations, naming the
// flag (0 keeps meaning the default, or no limit for --rate).
func (f replayFlags) checkLimits() error {
	var errs []error
	if f.concurrency < 0 {
		errs = append(errs, fmt.Errorf("--concurrency: must not be negative (0 takes the default), got %d", f.concurrency))
	}
	if !(f.rate >= 0) || math.IsInf(f.rate, 0) { // NaN fails every comparison
		errs = append(errs, fmt.Errorf("--rate: must not be negative (0: no limit), got %v", f.rate))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--drain-timeout", f.drain}, {"--progress-timeout", f.progressTimeout}, {"--read-stall", f.readStall}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative (0 takes the default), got %s", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// target names where a run's events go, for the replay state.
func target(cfg config.Config) string {
	if cfg.SinkType() == "stdout" {
		return "stdout"
	}
	k := cfg.Sink.Kafka
	brokers := slices.Clone(k.Brokers)
	slices.Sort(brokers)
	return fmt.Sprintf("kafka %s topic %s fallback %s dlq %s", strings.Join(brokers, ","), k.Topic, k.FallbackTopic, k.DLQTopic)
}
