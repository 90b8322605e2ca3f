package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/envelope"
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
  firehose  OneWelcome Firehose: [<category>/]YYYY/MM/DD/HH/... (UTC hour);
            only the hours in the window are listed, widened by one hour
  daily     fulfillmenttools: YYYY-MM-DD/*.json.gz; only the days in the window
  infobip   <requestId>-events-<start>-<end>.json.gz, selected by those times
  flat      every object under the prefix
Events are kept when --from <= occurred_at < --to. Objects may be gzip or
plain, JSON lines or concatenated values.

Progress is kept in a state file after every acknowledged batch: rerun the
same command to resume an interrupted replay; a finished one is not repeated
unless --restart is given.

Examples:
  consumer replay --from 2024-02-01 --to 2024-02-03 s3://onewelcome-export/public/
  consumer replay --tenant acme gs://ocff-acme-prd-public-events-export-bucket/ --from 2024-02-01T00 --to 2024-02-02
  consumer replay --dry-run ./exports
  consumer replay --sink stdout ./exports | jq .type

Exit codes: 0 everything replayed, 1 an object could not be read to its end
(the others were replayed) or the run failed, 2 usage or configuration error,
3 AWS refused the credentials.

Flags:
`

type replayFlags struct {
	common              commonFlags
	from, to            string
	layout, format      string
	tenant, stateFile   string
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
	fs.StringVar(&f.tenant, "tenant", "", "tenant for exports whose events carry none (default: from a fulfillmenttools bucket name)")
	fs.IntVar(&f.concurrency, "concurrency", 4, "objects read at once")
	fs.Float64Var(&f.rate, "rate", 0, "most events per second (0: no limit), so a backfill does not starve live consumers")
	fs.StringVar(&f.stateFile, "state", "", "progress file (default .eventrelay-replay-<hash of URLs and window>.json)")
	fs.BoolVar(&f.restart, "restart", false, "ignore earlier progress and replay everything again")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list the objects that would be read, and stop")
	fs.StringVar(&f.gcsKeyFile, "gcs-key-file", getenv("GOOGLE_APPLICATION_CREDENTIALS"), "GCS service-account key file (default: application default credentials)")
	fs.IntVar(&f.maxEvent, "max-event-size", envelope.DefaultMaxEventSize, "reject events larger than this many bytes")
	fs.IntVar(&f.maxRecord, "max-record-size", envelope.DefaultMaxRecordSize, "reject records larger than this many bytes")
	fs.Usage = func() {
		fmt.Fprint(io.err, replayHelp)
		fs.PrintDefaults()
	}
	urls, err := parseArgs(fs, args)
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
		return &configError{errors.New("give at least one URL (s3://bucket/prefix, gs://bucket/prefix or a directory); see --help")}
	}
	var w replay.Window
	var err error
	if f.from != "" {
		if w.From, err = replay.ParseTime(f.from); err != nil {
			return &configError{fmt.Errorf("--from: %w", err)}
		}
	}
	if f.to != "" {
		if w.To, err = replay.ParseTime(f.to); err != nil {
			return &configError{fmt.Errorf("--to: %w", err)}
		}
	}
	if !w.From.IsZero() && !w.To.IsZero() && !w.From.Before(w.To) {
		return &configError{errors.New("--from must be before --to")}
	}
	if _, err := replay.ParseLayout(f.layout); err != nil {
		return &configError{fmt.Errorf("--layout: %w", err)}
	}
	if _, err := envelope.ParseFormat(f.format); err != nil {
		return &configError{fmt.Errorf("--format: %w", err)}
	}
	cfg, err := f.common.load(getenv)
	if err == nil && !f.dryRun {
		err = cfg.Validate()
	}
	if err != nil {
		return &configError{fmt.Errorf("configuration: %w", err)}
	}
	log, err := logger(cfg, io.err)
	if err != nil {
		return &configError{err}
	}
	if f.dryRun {
		_, err := planReplay(ctx, f, urls, w, cfg.AWS.Config, cfg.AWS.ReplayRole, io, log)
		return err
	}
	srv, err := startOps(ctx, cfg, "", log)
	if err != nil {
		return &configError{err}
	}
	s, err := buildSink(ctx, cfg, io.out, log, srv.Registry())
	if err != nil {
		return err
	}
	defer s.Close()
	srv.SetReady(func() error { return nil })
	_, err = replayRun(ctx, f, urls, w, cfg.AWS.Config, cfg.AWS.ReplayRole, s, io, log, srv.Registry())
	return err
}

// planReplay plans every URL; with f.dryRun it prints the plan.
func planReplay(ctx context.Context, f replayFlags, urls []string, w replay.Window, awsCfg assumerole.Config, role assumerole.Role, io stdio, log zerolog.Logger) ([]replay.Source, error) {
	layout, _ := replay.ParseLayout(f.layout)
	format, _ := envelope.ParseFormat(f.format)
	var sources []replay.Source
	for _, u := range urls {
		loc, err := replay.ParseLocation(u)
		if err != nil {
			return nil, &configError{err}
		}
		store, err := openStore(ctx, loc, awsCfg, role, f.gcsKeyFile)
		if err != nil {
			return nil, err
		}
		found, objs, err := replay.Plan(ctx, store, loc.Prefix, layout, w)
		if err != nil {
			return nil, fmt.Errorf("planning %s: %w", loc, err)
		}
		fmtFor := format
		if fmtFor == envelope.FormatAuto {
			fmtFor = found.DefaultFormat()
		}
		var size int64
		for _, o := range objs {
			size += o.Size
		}
		log.Info().Str("source", loc.String()).Str("layout", string(found)).Str("format", string(fmtFor)).Int("objects", len(objs)).Int64("bytes", size).Msg("planned")
		if f.dryRun {
			fmt.Fprintf(io.out, "# %s: layout %s, format %s, %d objects, %d bytes\n", loc, found, fmtFor, len(objs), size)
			for _, o := range objs {
				fmt.Fprintf(io.out, "%s/%s\t%d\n", store.Name(), o.Key, o.Size)
			}
		}
		sources = append(sources, replay.Source{Store: store, Objects: objs, Format: fmtFor, Bucket: loc.Bucket})
	}
	return sources, nil
}

// replayRun plans and replays urls into s, keeping progress in the state
// file, and logs a summary.
func replayRun(ctx context.Context, f replayFlags, urls []string, w replay.Window, awsCfg assumerole.Config, role assumerole.Role, s sink.Sink, io stdio, log zerolog.Logger, reg prometheus.Registerer) (replay.Summary, error) {
	sources, err := planReplay(ctx, f, urls, w, awsCfg, role, io, log)
	if err != nil {
		return replay.Summary{}, err
	}
	tenant := f.tenant
	for _, src := range sources {
		if tenant == "" {
			tenant = replay.TenantFromBucket(src.Bucket)
		}
	}
	statePath := f.stateFile
	if statePath == "" {
		h := sha1.Sum([]byte(strings.Join(urls, "\n") + "|" + w.From.String() + "|" + w.To.String()))
		statePath = ".eventrelay-replay-" + hex.EncodeToString(h[:6]) + ".json"
	}
	state, err := replay.LoadState(statePath, urls, w, f.restart)
	if err != nil {
		return replay.Summary{}, &configError{err}
	}
	r := replay.NewRunner(replay.Options{Window: w, Tenant: tenant, Concurrency: f.concurrency, RateLimit: f.rate,
		MaxEventSize: f.maxEvent, MaxRecordSize: f.maxRecord}, s, state, log)
	r.Progress.Register(reg)
	progCtx, stopProg := context.WithCancel(ctx)
	tty := false
	if fd, ok := io.err.(*os.File); ok {
		tty = isatty.IsTerminal(fd.Fd())
	}
	done := make(chan struct{})
	go func() {
		r.Progress.Report(progCtx, io.err, tty, log)
		close(done)
	}()
	sum, runErr := r.Run(ctx, sources)
	stopProg()
	<-done
	logSummary(log, sum, statePath)
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
		return nil, &configError{fmt.Errorf("%s is not a directory", loc.Bucket)}
	}
	return replay.DirStore{Root: loc.Bucket}, nil
}
