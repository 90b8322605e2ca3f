package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/awstest"
)

// TestDemo builds eventrelay-demo and runs it end to end: `make demo` is
// the README's first command.
func TestDemo(t *testing.T) {
	awstest.StartKinesis(t).Stop() // skips (or fails in CI) when the emulators are missing
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--events", "300", "--shards", "2", "--http-addr", "off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"events.onewelcome  300 messages", "events.dlq         3 messages", "header event-id"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoUsage checks the flags without starting the stack.
func TestDemoUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--help"}, exitOK, "Usage: eventrelay-demo"},
		{[]string{"--shards", "0"}, exitUsage, "--shards between 1 and 50"},
		{[]string{"--events", "0"}, exitUsage, "--events must be positive"},
		{[]string{"--nope"}, exitUsage, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("exit %d (want %d), stderr %q lacks %q", code, tc.code, errb.String(), tc.err)
			}
		})
	}
}
