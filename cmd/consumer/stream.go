package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/eventrelay/eventrelay/internal/app"
)

const streamHelp = `Usage: consumer stream [flags]

Runs the real-time worker: leases the shards of the configured Kinesis stream
in a DynamoDB table, decodes each record's envelope of events and publishes one
Kafka message per event, checkpointing a shard only after Kafka acknowledged
every event before the checkpoint. Run several replicas to share the shards.

Configuration comes from --config (YAML, see 'consumer config example'),
overridden by EVENTRELAY_* environment variables, overridden by these flags.

SIGTERM or Ctrl-C drains: readiness turns 503, reading stops, the batch in
hand is delivered and checkpointed, leases are released (within
source.kinesis.drain_timeout). A second signal more than 1s after the first
exits at once; signals arriving together (timeout(1), a supervisor signalling
the process group) count as one.

Examples:
  consumer stream --config /etc/eventrelay/config.yaml
  EVENTRELAY_SOURCE_KINESIS_STREAM=onewelcome-events consumer stream --brokers kafka:9092
  consumer stream --config dev.yaml --sink stdout        # dry run: print instead of producing

Exit codes: 0 drained cleanly, 1 failed, 2 configuration error (also: the stream already has
its 20 enhanced fan-out consumers), 3 AWS refused the credentials,
4 a Kafka topic is missing and was not created (see README: topics that do not exist yet).

Flags:
`

func runStream(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f commonFlags
	f.register(fs, getenv, io.environ)
	streamName := fs.String("stream", "", "Kinesis stream name (overrides source.kinesis.stream)")
	bf := backfill{getenv: getenv}
	fs.StringVar(&bf.url, "backfill", "", "before following the stream, replay this export (s3://, gs:// or a directory) from --backfill-from; only when the lease table has no checkpoints yet")
	fs.StringVar(&bf.from, "backfill-from", "", "start of the backfill: a UTC date (2024-02-01), hour (2024-02-01T09) or RFC 3339 time; required with --backfill")
	fs.DurationVar(&bf.overlap, "backfill-overlap", 10*time.Minute, "the stream starts this long before the newest backfilled event; events in both are delivered once")
	fs.Usage = func() {
		fmt.Fprint(io.err, streamHelp)
		fs.PrintDefaults()
	}
	if _, err := app.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := f.load(getenv)
	if err == nil && *streamName != "" {
		cfg.Source.Kinesis.Stream = *streamName
	}
	if err == nil {
		err = configTargets["stream"].check(cfg)
	}
	if err == nil {
		err = bf.validate()
	}
	if err != nil {
		fmt.Fprintf(io.err, "consumer stream: configuration: %v\n", err)
		return exitUsage
	}
	log, err := app.Logger(cfg, io.err)
	if err != nil {
		fmt.Fprintf(io.err, "consumer stream: %v\n", err)
		return exitUsage
	}
	if err := app.Stream(ctx, cfg, io.out, log, bf.prelude(cfg, io, log)); err != nil {
		log.Error().Err(err).Msg("stream stopped")
		return exitFor(err)
	}
	return exitOK
}
