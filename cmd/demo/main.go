// Command eventrelay-demo runs the real-time pipeline of `consumer stream`
// on an embedded local stack: the npm Kinesis and DynamoDB emulators and an
// in-process Kafka broker (kfake). It is a command of its own so that the
// production binary links neither the fake broker nor the emulator
// orchestration. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/emulators"
)

const name = "eventrelay-demo"

// Exit codes, as consumer's in README.md.
const (
	exitOK     = 0
	exitFailed = 1 // the stack did not start or the events did not arrive
	exitUsage  = 2 // bad flags, or the emulators are not installed
)

const help = `Usage: eventrelay-demo [flags]   (make demo, or go run ./cmd/demo)

Runs the real-time pipeline on an embedded local stack — no cloud account,
no Docker: it starts kinesis-local and dynalite (the npm emulators under
localstack/emulators; 'make demo' installs them) and an in-process Kafka
broker (kfake), writes sample OneWelcome envelopes plus a few poison records
to a Kinesis stream, runs the same worker as 'consumer stream', and reads
Kafka back to show what arrived. With --keep it keeps everything running
(metrics on --http-addr, Kafka on the printed address) until Ctrl-C.

Flags:
`

func main() {
	// The first SIGINT/SIGTERM stops the demo cleanly; a second exits at once.
	ctx, cancel := app.NotifyContext(context.Background(), name)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// run parses the flags, runs the demo and returns the exit code.
func run(ctx context.Context, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(errw)
	events := fs.Int("events", 2000, "sample events to write")
	shards := fs.Int("shards", 4, "shards of the demo stream")
	keep := fs.Bool("keep", false, "keep the stack and the worker running until Ctrl-C")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", `address of /healthz, /readyz, /metrics, or "off"`)
	logLevel := fs.String("log-level", "warn", "worker log level")
	fs.Usage = func() {
		fmt.Fprint(errw, help)
		fs.PrintDefaults()
	}
	if _, err := app.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *events < 1 || *shards < 1 || *shards > 50 {
		fmt.Fprintf(errw, "%s: --events must be positive and --shards between 1 and 50\n", name)
		return exitUsage
	}
	if err := demo(ctx, out, errw, *events, *shards, *keep, *httpAddr, *logLevel); err != nil {
		fmt.Fprintf(errw, "%s: %v\n", name, err)
		if errors.Is(err, emulators.ErrNotInstalled) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}
