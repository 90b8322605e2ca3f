package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventrelay/eventrelay/internal/config"
)

// TestOneShotCommandsDoNotListenByDefault: with port 8080 taken (by another
// replay, or anything else), a replay without --http-addr still runs.
// Before, replay and poll listened on :8080 by default and failed before
// reading a byte.
func TestOneShotCommandsDoNotListenByDefault(t *testing.T) {
	if l, err := net.Listen("tcp", ":8080"); err == nil {
		defer l.Close() // else something already holds it: just as good
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "part.json"), []byte(`{"id":"a","eventName":"order-created_event-v1","payload":{"id":"o1"},"created":"2024-02-01T09:20:39.411067+00:00"}`+"\n"), 0o644)
	code, stdout, stderr := runCLI(t, "", "replay", dir, "--sink", "stdout", "--tenant", "acme", "--state", filepath.Join(t.TempDir(), "s.json"))
	if code != exitOK || stdout == "" {
		t.Fatalf("replay with :8080 taken: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

func TestHTTPAddrDefaults(t *testing.T) {
	for _, tc := range []struct{ set, def, want string }{
		{"", config.StreamHTTPAddr, ":8080"},
		{"", "", ""},
		{"off", config.StreamHTTPAddr, ""},
		{"127.0.0.1:9090", "", "127.0.0.1:9090"},
	} {
		c := config.Config{HTTP: config.HTTP{Addr: tc.set}}
		if got := c.HTTPAddr(tc.def); got != tc.want {
			t.Errorf("http.addr %q, default %q: got %q, want %q", tc.set, tc.def, got, tc.want)
		}
	}
}
