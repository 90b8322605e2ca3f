package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/config"
)

const configHelp = `Usage:
  consumer config example                print a commented configuration with every field
  consumer config check [--for CMD] FILE load FILE (plus EVENTRELAY_* overrides), validate it
                                         and print it with secrets redacted

check validates what the file configures: the sink and logging always, then
each configured source for the command that reads it (source.kinesis.stream
set: stream; source.akeneo: poll akeneo-logs; source.fluent: poll
fluent-events). A file with no source is checked as a replay configuration.
--for stream|replay|akeneo-logs|fluent-events checks it for that command only.

check also reads the files the command would read when it starts (the *_file
secrets and TLS files of the sections it uses): a file that cannot be read,
is empty or holds more than one line is an error naming the setting.

Every field can be overridden by an environment variable named after its path:
sink.kafka.brokers -> EVENTRELAY_SINK_KAFKA_BROKERS (lists comma-separated). An
EVENTRELAY_* variable that matches no field is an error, as is an unknown field
or a value of the wrong type in the file; each names the field's path.
Exit codes: 0 valid, 2 invalid (each problem names its field).

Examples:
  consumer config example > eventrelay.yaml
  consumer config check eventrelay.yaml
  consumer config check --for replay eventrelay.yaml
  EVENTRELAY_SINK_KAFKA_BROKERS=kafka:9092 consumer config check eventrelay.yaml
`

// configTarget is what one command needs of the configuration.
type configTarget struct {
	validate func(config.Config) error
	// files are the sections whose files (*_file secrets, TLS files) the
	// command reads when it starts (config.Config.CheckFiles).
	files []string
}

// check validates c for the command and reads the files it would read, so
// that `config check` rejects what the command would.
func (t configTarget) check(c config.Config) error {
	return errors.Join(t.validate(c), c.CheckFiles(t.files...))
}

// configTargets are the commands a configuration can be checked for.
var configTargets = map[string]configTarget{
	"stream":        {config.Config.ValidateStream, []string{"sink.kafka", "aws.stream_role", "aws.lease_table_role"}},
	"replay":        {config.Config.Validate, []string{"sink.kafka", "aws.replay_role"}},
	"akeneo-logs":   {func(c config.Config) error { return errors.Join(c.Validate(), c.Source.Akeneo.Validate()) }, []string{"sink.kafka", "source.akeneo"}},
	"fluent-events": {func(c config.Config) error { return errors.Join(c.Validate(), c.Source.Fluent.Validate()) }, []string{"sink.kafka", "source.fluent"}},
}

// configuredTargets are the commands a file is meant for, from the sources
// it configures.
func configuredTargets(c config.Config) []string {
	var out []string
	if c.Source.Kinesis.Stream != "" {
		out = append(out, "stream")
	}
	if !reflect.ValueOf(c.Source.Akeneo).IsZero() {
		out = append(out, "akeneo-logs")
	}
	if !reflect.ValueOf(c.Source.Fluent).IsZero() {
		out = append(out, "fluent-events")
	}
	if len(out) == 0 {
		out = append(out, "replay")
	}
	return out
}

func runConfig(_ context.Context, args []string, io stdio, getenv func(string) string) int {
	switch {
	case len(args) == 1 && args[0] == "example":
		io.out.Write(config.Example())
		return exitOK
	case len(args) >= 1 && args[0] == "check":
		return configCheck(args[1:], io, getenv)
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		fmt.Fprint(io.err, configHelp)
		return exitOK
	}
	fmt.Fprint(io.err, configHelp)
	return exitUsage
}

func configCheck(args []string, io stdio, getenv func(string) string) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(io.err)
	target := fs.String("for", "", "check for this command only: stream, replay, akeneo-logs or fluent-events")
	fs.Usage = func() { fmt.Fprint(io.err, configHelp) }
	files, err := app.ParseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(files) != 1 {
		fmt.Fprint(io.err, configHelp)
		return exitUsage
	}
	if _, ok := configTargets[*target]; *target != "" && !ok {
		fmt.Fprintf(io.err, "consumer config check: --for: want stream, replay, akeneo-logs or fluent-events, got %q\n", *target)
		return exitUsage
	}
	c, err := config.Load(files[0], getenv)
	if err == nil {
		err = config.CheckEnv(io.environ)
	}
	if err != nil {
		fmt.Fprintf(io.err, "consumer config check: %s is invalid:\n%v\n", files[0], err)
		return exitUsage
	}
	targets := configuredTargets(c)
	if *target != "" {
		targets = []string{*target}
	}
	var errs []error
	for _, t := range targets {
		if err := configTargets[t].check(c); err != nil {
			errs = append(errs, fmt.Errorf("for %s:\n%w", t, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(io.err, "consumer config check: %s is invalid:\n%v\n", files[0], err)
		return exitUsage
	}
	out, err := c.Redacted()
	if err != nil {
		fmt.Fprintf(io.err, "consumer config check: %v\n", err)
		return exitBadInput
	}
	fmt.Fprintf(io.out, "# %s is valid for %s; effective configuration (defaults applied, secrets redacted):\n%s",
		files[0], strings.Join(targets, ", "), out)
	return exitOK
}
