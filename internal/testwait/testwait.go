// Package testwait is the tests' one way to wait for a condition: poll it
// until it holds or a deadline passes, then fail with what was awaited and
// whatever context the caller can show (logs, say). It polls quickly at
// first and backs off to 100 ms, so a condition that is already true costs
// nothing and a slow one does not spin.
package testwait

import (
	"testing"
	"time"
)

// Until polls cond until it returns true, failing t after d with what and
// the output of each show function.
func Until(t testing.TB, d time.Duration, what string, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	pause := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			msg := "waited " + d.String() + " for " + what
			for _, s := range show {
				msg += "\n" + s()
			}
			t.Fatal(msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}
