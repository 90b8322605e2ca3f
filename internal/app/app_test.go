package app

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalsTogetherDrain: two SIGTERMs that arrive together (GNU timeout
// or a supervisor signalling the process and its group) are one request to
// drain; only a signal more than a second after the first exits at once.
// The clock is a list of instants, one per signal received.
func TestSignalsTogetherDrain(t *testing.T) {
	t0 := time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		after    []time.Duration // arrival of each signal after the first
		wantExit bool
	}{
		{"one signal", nil, false},
		{"two at once", []time.Duration{0}, false},
		{"three within a second", []time.Duration{time.Millisecond, time.Second}, false},
		{"a second one later", []time.Duration{time.Second + time.Millisecond}, true},
		{"together, then later", []time.Duration{0, 3 * time.Second}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := []time.Time{t0}
			for _, d := range tc.after {
				clock = append(clock, t0.Add(d))
			}
			sigs := make(chan os.Signal, len(clock))
			for range clock {
				sigs <- syscall.SIGTERM
			}
			close(sigs)
			var cancelled, exits int
			var stderr strings.Builder
			watchSignals(sigs, signalWatch{
				name:   "consumer",
				cancel: func() { cancelled++ },
				now: func() time.Time {
					now := clock[0]
					clock = clock[1:]
					return now
				},
				stderr: &stderr,
				exit: func(code int) {
					if code != 130 {
						t.Errorf("exit code %d, want 130", code)
					}
					exits++
				},
			})
			if cancelled != 1 {
				t.Errorf("cancelled %d times, want once", cancelled)
			}
			if got := exits == 1; got != tc.wantExit || exits > 1 {
				t.Errorf("exited %d times, want exit %v; stderr:\n%s", exits, tc.wantExit, stderr.String())
			}
		})
	}
}
