package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// TestPollCommand runs `consumer poll fluent-events --once` against a
// small Fluent-style API and checks events and exit codes.
func TestPollCommand(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"t1","expires_in":3600}`)
	})
	mux.HandleFunc("/api/v4.1/event", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t1" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("start") != "0" {
			fmt.Fprint(w, `{"results":[]}`)
			return
		}
		at := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000-0700")
		fmt.Fprintf(w, `{"results":[{"id":"e1","name":null,"type":"ORCHESTRATION","accountId":"A","context":{"rootEntityType":"ORDER","rootEntityId":"1"},"generatedOn":"%s"},`+
			`{"id":"e2","name":"CREATE","type":"ORCHESTRATION","accountId":"A","context":{"rootEntityType":"ORDER","rootEntityId":"2"},"generatedOn":"%s"}]}`, at, at)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("pw\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "cs"), []byte("cs"), 0o600)
	env := map[string]string{
		"EVENTRELAY_SOURCE_FLUENT_BASE_URL": srv.URL, "EVENTRELAY_SOURCE_FLUENT_USERNAME": "u", "EVENTRELAY_SOURCE_FLUENT_CLIENT_ID": "c",
		"EVENTRELAY_SOURCE_FLUENT_PASSWORD_FILE": filepath.Join(dir, "pw"), "EVENTRELAY_SOURCE_FLUENT_CLIENT_SECRET_FILE": filepath.Join(dir, "cs"),
		"EVENTRELAY_SOURCE_FLUENT_STATE_FILE": filepath.Join(dir, "cursor.json"),
	}
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
		return code, out.String(), errb.String()
	}
	code, out, stderr := run("poll", "fluent-events", "--once", "--sink", "stdout", "--http-addr", "off")
	if code != exitOK || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"key":"ORDER:2"`) {
		t.Fatalf("poll: exit %d\nout %s\nerr %s", code, out, stderr)
	}
	// A stdout poll is a preview: it leaves the cursor alone (it used to
	// advance it, so the real poll after a preview skipped its events).
	if _, err := os.Stat(env["EVENTRELAY_SOURCE_FLUENT_STATE_FILE"]); !os.IsNotExist(err) {
		t.Errorf("a stdout preview wrote the cursor file (stat: %v)", err)
	}
	code, out, _ = run("poll", "fluent-events", "--once", "--sink", "stdout", "--http-addr", "off")
	if code != exitOK || strings.Count(out, "\n") != 2 {
		t.Errorf("a second preview: exit %d, want the same 2 events, out %q", code, out)
	}
	kc := kafkatest.Start(t, 1, 1, "events.fluent", "events.dlq")
	if code, _, stderr := run("poll", "fluent-events", "--once", "--brokers", kc.Addrs[0], "--http-addr", "off"); code != exitOK {
		t.Fatalf("poll into Kafka: exit %d\n%s", code, stderr)
	}
	if got := idsIn(t, kc.Addrs, "events.fluent"); len(got) != 2 || got["e1"] != 1 || got["e2"] != 1 {
		t.Errorf("Kafka after a preview and a real poll: %v, want e1 and e2 once", got)
	}
	code, out, _ = run("poll", "fluent-events", "--once", "--sink", "stdout", "--http-addr", "off")
	if code != exitOK || out != "" {
		t.Errorf("a preview after the real poll repeated delivered events: exit %d, out %q", code, out)
	}
	if code, _, stderr := run("poll", "akeneo-logs", "--once", "--sink", "stdout", "--http-addr", "off"); code != exitUsage || !strings.Contains(stderr, "source.akeneo.pim_url") {
		t.Errorf("akeneo without config: exit %d, %s", code, stderr)
	}
	if code, _, stderr := run("poll", "salesforce"); code != exitUsage || !strings.Contains(stderr, `unknown API "salesforce"`) {
		t.Errorf("unknown API: exit %d, stderr %q", code, stderr)
	}
}

// TestPollOnceGivesUp: `poll --once` against an API failing with 500
// every time exits 1 after source.fluent.once_attempts requests, naming
// the status, instead of retrying forever.
func TestPollOnceGivesUp(t *testing.T) {
	var requests atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"t1","expires_in":3600}`)
	})
	mux.HandleFunc("/api/v4.1/event", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "0") // the shortest backoff (100ms): this test sleeps once
		http.Error(w, "upstream down", http.StatusInternalServerError)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	env := map[string]string{
		"EVENTRELAY_SOURCE_FLUENT_BASE_URL": srv.URL, "EVENTRELAY_SOURCE_FLUENT_USERNAME": "u", "EVENTRELAY_SOURCE_FLUENT_CLIENT_ID": "c",
		"EVENTRELAY_SOURCE_FLUENT_PASSWORD": "pw", "EVENTRELAY_SOURCE_FLUENT_CLIENT_SECRET": "cs",
		"EVENTRELAY_SOURCE_FLUENT_STATE_FILE": filepath.Join(dir, "cursor.json"), "EVENTRELAY_SOURCE_FLUENT_ONCE_ATTEMPTS": "2",
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errb strings.Builder
	code := run(ctx, []string{"poll", "fluent-events", "--once", "--sink", "stdout", "--http-addr", "off"},
		stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
	if code != exitBadInput || !strings.Contains(errb.String(), "giving up after 2 attempts") || !strings.Contains(errb.String(), "HTTP 500") || ctx.Err() != nil {
		t.Fatalf("exit %d after %d requests, want 1 naming HTTP 500 after 2 attempts:\n%s", code, requests.Load(), errb.String())
	}
}
