// Package app is the process wiring the eventrelay commands share: the
// logger, the operations server, the sink, AWS credentials per role, the
// real-time stream worker and the shutdown signals. cmd/consumer (the
// production binary) and cmd/demo (the local-stack demo) both build on it,
// so the demo runs exactly what `consumer stream` runs.
package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ConfigError marks an error in the configuration or on the command line;
// the commands exit 2 for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// SecondSignalAfter is how long after the first signal a second one must
// come to exit without draining. Signals closer together are one request:
// GNU timeout and many supervisors signal both the process and its group,
// so a single stop arrives as two SIGTERMs at once.
const SecondSignalAfter = time.Second

// NotifyContext returns a context that the first SIGINT or SIGTERM cancels
// (the drain); a signal more than SecondSignalAfter later exits the process
// at once with code 130, saying so on stderr under name.
func NotifyContext(ctx context.Context, name string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go watchSignals(sigs, signalWatch{name: name, cancel: cancel, now: time.Now, stderr: os.Stderr, exit: os.Exit})
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}

// signalWatch is what watchSignals acts on, injected for tests.
type signalWatch struct {
	name   string
	cancel context.CancelFunc
	now    func() time.Time
	stderr io.Writer
	exit   func(code int)
}

// watchSignals cancels on the first signal, ignores those within
// SecondSignalAfter of it and exits with 130 on the next one. It returns
// when it exits or sigs is closed.
func watchSignals(sigs <-chan os.Signal, w signalWatch) {
	if _, ok := <-sigs; !ok {
		return
	}
	first := w.now()
	w.cancel()
	for range sigs {
		if w.now().Sub(first) <= SecondSignalAfter {
			fmt.Fprintf(w.stderr, "%s: signal within %s of the first taken as the same one; still draining (signal again to exit at once)\n", w.name, SecondSignalAfter)
			continue
		}
		fmt.Fprintf(w.stderr, "%s: second signal, exiting without draining\n", w.name)
		w.exit(130)
		return
	}
}
