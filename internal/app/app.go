// Package app is the process wiring the eventrelay commands share: the
// logger, the operations server, the sink, AWS credentials per role, the
// real-time stream worker and the shutdown signals. cmd/consumer (the
// production binary) and cmd/demo (the local-stack demo) both build on it,
// so the demo runs exactly what `consumer stream` runs.
package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// ConfigError marks an error in the configuration or on the command line;
// the commands exit 2 for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// NotifyContext returns a context that the first SIGINT or SIGTERM cancels
// (the drain); a second signal exits the process at once with code 130,
// saying so on stderr under name.
func NotifyContext(ctx context.Context, name string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		<-sigs
		fmt.Fprintf(os.Stderr, "%s: second signal, exiting without draining\n", name)
		os.Exit(130)
	}()
	return ctx, cancel
}
