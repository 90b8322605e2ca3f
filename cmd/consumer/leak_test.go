package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests when a goroutine outlives them (the commands run
// in process by runCLI start workers that must stop when the command
// returns), and removes the binaries built for the run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) {
			removeBuilt()
			os.Exit(code)
		}))
}

// removeBuilt deletes the directories goBinary built into.
func removeBuilt() {
	buildMu.Lock()
	defer buildMu.Unlock()
	for _, p := range built {
		os.RemoveAll(filepath.Dir(p))
	}
}
