// Command consumer moves vendor event exports into Kafka. See README.md and
// `consumer help`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/eventrelay/eventrelay/internal/app"
)

// defaultGCPercent is the garbage collector's target (GOGC) unless the
// GOGC environment variable sets one. Most of the heap is event bytes in
// flight, which the default 100 lets grow to twice their size before a
// collection. BENCHMARKS.md (replay with default settings) has the replay
// at 75 and at 100: 75 peaks a few MB lower at about the same CPU per
// event. Prometheus made the same change for the same reason.
const defaultGCPercent = 75

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// The first SIGINT/SIGTERM drains (cancels ctx); another more than a
	// second later exits at once (app.SecondSignalAfter).
	ctx, cancel := app.NotifyContext(context.Background(), "consumer")
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, environ: os.Environ()}, os.Getenv)
	cancel()
	os.Exit(code)
}

// stdio is the process's standard streams and its environment's
// KEY=value list (for config.CheckEnv; nil skips the check), injected for
// tests.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	environ  []string
}

// Exit codes, documented in README.md.
const (
	exitOK       = 0 // everything was read and delivered
	exitBadInput = 1 // finished, but some input was bad (reported on stderr) or a run failed
	exitUsage    = 2 // the command line or configuration is wrong
	// exitCredentials: AWS refused the credentials (wrong external ID or
	// role, no base credentials).
	exitCredentials = 3
	// exitTopicMissing: a Kafka topic does not exist and was not created
	// (auto-creation off, or refused by the brokers). Nothing after the
	// first undelivered event was checkpointed.
	exitTopicMissing = 4
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, io stdio, getenv func(string) string) int
}

func commands() []command {
	return []command{
		{"stream", "run the real-time Kinesis -> Kafka worker", runStream},
		{"replay", "replay historical exports from S3, GCS or a directory into Kafka", runReplay},
		{"poll", "poll a vendor API (akeneo-logs, fluent-events) into Kafka", runPoll},
		{"config", "print an example configuration or check one", runConfig},
		{"decode", "decode vendor event files into normalized events (JSON lines)", runDecode},
		{"credentials", "check AWS credentials and the cross-account role assumption", runCredentials},
		{"version", "print the version, commit and build date", runVersion},
	}
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	if len(args) == 0 || isHelpFlag(args[0]) || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" && args[1] != "help" {
			return run(ctx, []string{args[1], "--help"}, io, getenv)
		}
		if len(args) == 0 {
			usage(io.err)
			return exitUsage
		}
		usage(io.out)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if helpAsked(args[1:]) {
				// Help that was asked for goes to stdout (so it pages and
				// greps); flag mistakes still print usage on stderr.
				io.err = io.out
			}
			return c.run(ctx, args[1:], io, getenv)
		}
	}
	fmt.Fprintf(io.err, "consumer: unknown command %q\n\n", args[0])
	usage(io.err)
	return exitUsage
}

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// helpAsked reports whether a command's arguments ask for its help (a help
// flag before any "--").
func helpAsked(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprint(w, `consumer moves vendor event exports into Kafka, one message per event.

Usage:
  consumer <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'consumer help <command>' for a command's flags and examples. The demo on
an embedded local stack is a command of its own: 'make demo' (go run ./cmd/demo).

Exit codes: 0 success, 1 some input was bad, nothing to replay, or the run failed, 2 usage or
configuration error, 3 AWS credentials refused, 4 a Kafka topic is missing and could not be created.
`)
}
