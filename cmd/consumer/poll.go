package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/poll"
)

const pollHelp = `Usage: consumer poll akeneo-logs|fluent-events [flags]

Polls a vendor API into Kafka through the same pipeline as the stream:
  akeneo-logs    Akeneo Event Platform logs (X-PIM-URL, X-PIM-TOKEN, X-PIM-CLIENT-ID),
                 settings under source.akeneo
  fluent-events  Fluent Commerce Event API (OAuth password grant), settings
                 under source.fluent

Each poll asks for the window from the cursor minus the overlap to now, pages
by timestamp (each page continues from the last timestamp of the one before,
so entries moving or appearing meanwhile are not skipped; shifts are logged
and counted), drops entries already delivered (by id), delivers the rest
and only then advances the cursor in the state file. Akeneo error logs that
the platform merged (same id, later timestamp) are delivered again once, with
the header event-updated: true. 429 and 5xx are retried honouring Retry-After
(with --once at most once_attempts times, default 8, then exit 1 naming the
status); a 401 refreshes the token once; other 4xx and a page larger than
max_body_size (default 64 MiB) stop with an error. A cursor older
than the API's retention is reported (logged and counted), not skipped silently.

The cursor lives in source.<api>.state_file (without one it is kept in memory
only and every start reads again from source.<api>.start, default 24h back).
With --sink stdout the poll is a preview: it starts from the saved cursor and
never writes it.

Examples:
  consumer poll akeneo-logs --config /etc/eventrelay/config.yaml
  consumer poll fluent-events --config dev.yaml --once --sink stdout

Exit codes: 0 stopped cleanly (or --once done), 1 failed, 2 configuration error,
4 a Kafka topic is missing and could not be created.

Flags:
`

func runPoll(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	fs := flag.NewFlagSet("poll", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f commonFlags
	f.register(fs, getenv, io.environ)
	once := fs.Bool("once", false, "poll one window and exit")
	fs.Usage = func() {
		fmt.Fprint(io.err, pollHelp)
		fs.PrintDefaults()
	}
	pos, err := app.ParseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case len(pos) == 0:
		fmt.Fprintln(io.err, "consumer poll: name the API: akeneo-logs or fluent-events (see --help)")
		return exitUsage
	case len(pos) > 1:
		fmt.Fprintf(io.err, "consumer poll: one API at a time, got %q (see --help)\n", pos)
		return exitUsage
	case pos[0] != "akeneo-logs" && pos[0] != "fluent-events":
		fmt.Fprintf(io.err, "consumer poll: unknown API %q: want akeneo-logs or fluent-events (see --help)\n", pos[0])
		return exitUsage
	}
	cfg, err := f.load(getenv)
	if err == nil {
		err = configTargets[pos[0]].check(cfg)
	}
	if err != nil {
		fmt.Fprintf(io.err, "consumer poll: configuration: %v\n", err)
		return exitUsage
	}
	log, err := app.Logger(cfg, io.err)
	if err != nil {
		fmt.Fprintf(io.err, "consumer poll: %v\n", err)
		return exitUsage
	}
	srv, err := app.StartOps(ctx, cfg, "", log)
	if err != nil {
		fmt.Fprintf(io.err, "consumer poll: %v\n", err)
		return exitUsage
	}
	s, err := app.BuildSink(ctx, cfg, io.out, log, srv.Registry())
	if err != nil {
		log.Error().Err(err).Msg("sink")
		return exitFor(err)
	}
	defer s.Close()
	// A stdout sink is a preview: it starts from the saved cursor, so it
	// shows what the next real poll would deliver, and never moves it.
	preview := cfg.SinkType() == "stdout"
	var p *poll.Poller
	var stateFile string
	if pos[0] == "akeneo-logs" {
		a := cfg.Source.Akeneo
		a.Preview, stateFile = preview, a.StateFile
		p, err = poll.NewAkeneo(a, s, log, srv.Registry())
	} else {
		fc := cfg.Source.Fluent
		fc.Preview, stateFile = preview, fc.StateFile
		p, err = poll.NewFluent(fc, s, log, srv.Registry())
	}
	switch {
	case preview && stateFile != "":
		log.Info().Str("state_file", stateFile).Msg("stdout sink: a preview from the saved cursor; the cursor is not advanced")
	case stateFile == "":
		log.Warn().Msg("no state_file: the cursor is kept in memory only, so a restart reads again from source.*.start")
	}
	if err != nil {
		fmt.Fprintf(io.err, "consumer poll: %v\n", err)
		return exitUsage
	}
	srv.SetReady(func() error { return nil })
	if *once {
		st, err := p.OneShot(ctx)
		if err != nil {
			log.Error().Err(err).Msg("poll failed")
			return exitFor(err)
		}
		log.Info().Int("events", st.Events).Int("duplicates", st.Duplicates).Int("updated", st.Updated).Int("pages", st.Pages).Msg("poll done")
		return exitOK
	}
	if err := p.Run(ctx); err != nil {
		log.Error().Err(err).Msg("polling stopped")
		return exitFor(err)
	}
	return exitOK
}
