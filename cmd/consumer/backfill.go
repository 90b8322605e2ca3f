package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/config"
	kin "github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/eventrelay/eventrelay/internal/replay"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// backfill replays an export before the stream is followed, with no gap:
// the stream starts (AT_TIMESTAMP) overlap before the newest backfilled
// event, and stream events the backfill already delivered in that overlap
// are dropped by event id.
type backfill struct {
	url     string
	from    string
	overlap time.Duration
	getenv  func(string) string // for the replay state directory
}

func (b backfill) validate() error {
	switch {
	case b.url == "" && b.from != "":
		return errors.New("--backfill-from needs --backfill")
	case b.url == "":
		return nil
	case b.from == "":
		return errors.New("--backfill needs --backfill-from")
	case b.overlap <= 0:
		return fmt.Errorf("--backfill-overlap: must be positive, got %s", b.overlap)
	}
	if _, err := replay.ParseTime(b.from); err != nil {
		return fmt.Errorf("--backfill-from: %w", err)
	}
	return nil
}

// prelude is the backfill as the stream worker's prelude; nil without
// --backfill.
func (b backfill) prelude(cfg config.Config, io stdio, log zerolog.Logger) app.Prelude {
	if b.url == "" {
		return nil
	}
	return func(ctx context.Context, clients kin.Clients, worker *kin.Stream, s sink.Sink, reg prometheus.Registerer) error {
		return b.run(ctx, cfg, clients, worker, s, io, log, reg)
	}
}

func (b backfill) run(ctx context.Context, cfg config.Config, clients kin.Clients, worker *kin.Stream, s sink.Sink, io stdio, log zerolog.Logger, reg prometheus.Registerer) error {
	if err := kin.EnsureLeaseTable(ctx, clients.DynamoDB, worker.LeaseTable()); err != nil {
		return err
	}
	has, err := kin.HasCheckpoints(ctx, clients.DynamoDB, worker.LeaseTable())
	if err != nil {
		return err
	}
	if has {
		log.Info().Str("lease_table", worker.LeaseTable()).Msg("lease table has checkpoints: following the stream from them; backfill skipped")
		return nil
	}
	from, err := replay.ParseTime(b.from) // checked by validate; never discarded
	if err != nil {
		return fmt.Errorf("--backfill-from: %w", err)
	}
	log.Info().Str("source", b.url).Time("from", from).Msg("backfilling before following the stream")
	ov := replay.NewOverlap(2 * b.overlap)
	job := &replay.Job{URLs: []string{b.url}, Window: replay.Window{From: from}, Lateness: replay.AutoLateness,
		Target: target(cfg), AWS: cfg.AWS.Config, Role: cfg.AWS.ReplayRole, Getenv: b.getenv, Log: log, Registry: reg, Progress: io.err}
	sum, err := job.Run(ctx, ov.Recording(s))
	var nothing *replay.NothingToReplay
	if errors.As(err, &nothing) {
		// An export with nothing after --backfill-from is no reason not to follow the stream.
		log.Warn().Err(err).Str("source", b.url).Msg("nothing to backfill; following the stream from --backfill-from")
		err = nil
	}
	if err != nil {
		return fmt.Errorf("backfill from %s: %w (rerun to resume it)", b.url, err)
	}
	start := from
	if newest := ov.Newest(); !newest.IsZero() {
		start = newest.Add(-b.overlap)
	}
	worker.StartAt(start)
	worker.Suppress(ov.Contains)
	log.Info().Int64("events", sum.Events).Time("stream_start", start).Msg("backfill done; following the stream from there, dropping events delivered twice in the overlap")
	return nil
}
