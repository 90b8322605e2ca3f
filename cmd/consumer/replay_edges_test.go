package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// runCLIEnv is runCLI with an environment (nothing else of the real one).
func runCLIEnv(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// ftExport writes a fulfillmenttools export as the vendor's
// `gsutil cp -r gs://ocff-<tenant>-<tier>-public-events-export-bucket ./`
// leaves it (seed 000): <dir>/<bucket>/YYYY-MM-DD/000000000000.json, one
// event at 2024-02-01T10:00:00Z. It returns the bucket folder.
func ftExport(t *testing.T, dir, bucket string) string {
	t.Helper()
	root := filepath.Join(dir, bucket)
	day := filepath.Join(root, "2024-02-01")
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	line := `{"id":"ev-1","eventName":"order-created_event-v1","payload":{"id":"o-1"},"created":"2024-02-01T10:00:00.000000+00:00"}` + "\n"
	if err := os.WriteFile(filepath.Join(day, "000000000000.json"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestReplayFulfillmenttoolsTenantFromPath: a local copy of the export
// bucket names the tenant however its path is typed; a copy whose path
// names none stops with a configuration error instead of sending events
// with no (or a made-up) tenant.
func TestReplayFulfillmenttoolsTenantFromPath(t *testing.T) {
	exports := t.TempDir()
	bucket := ftExport(t, exports, "ocff-mytenant-pre-public-events-export-bucket")
	for _, tc := range []struct{ name, cwd, url string }{
		{"absolute with trailing slash", "", bucket + "/"},
		{"relative", exports, "ocff-mytenant-pre-public-events-export-bucket"},
		{"dot inside the folder", bucket, "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cwd != "" {
				t.Chdir(tc.cwd)
			}
			code, out, stderr := runCLI(t, "", "replay", tc.url, "--sink", "stdout", "--state", filepath.Join(t.TempDir(), "s.json"), "--http-addr", "off")
			if code != exitOK || !strings.Contains(out, `"tenant":"mytenant"`) {
				t.Errorf("exit %d, want %d and tenant mytenant\nout: %s\nstderr: %s", code, exitOK, out, stderr)
			}
		})
	}
	plain := ftExport(t, t.TempDir(), "events")
	code, out, stderr := runCLI(t, "", "replay", plain, "--sink", "stdout", "--state", filepath.Join(t.TempDir(), "s.json"), "--http-addr", "off")
	if code != exitUsage || out != "" || !strings.Contains(stderr, "--tenant") || !strings.Contains(stderr, "public-events-export-bucket") {
		t.Errorf("no tenant anywhere: exit %d, want %d with a message naming the bucket pattern and --tenant\nout: %s\nstderr: %s", code, exitUsage, out, stderr)
	}
	code, out, _ = runCLI(t, "", "replay", plain, "--tenant", "acme", "--sink", "stdout", "--state", filepath.Join(t.TempDir(), "s.json"), "--http-addr", "off")
	if code != exitOK || !strings.Contains(out, `"tenant":"acme"`) {
		t.Errorf("--tenant: exit %d, out %s", code, out)
	}
}

// TestReplayNothingToReplay: a wrong --layout, a window with no folder, and
// a window whose objects hold no event of it each say "nothing to replay"
// with the URL, the layout and the window, and exit 1 — also on a rerun.
func TestReplayNothingToReplay(t *testing.T) {
	bucket := ftExport(t, t.TempDir(), "ocff-mytenant-pre-public-events-export-bucket")
	state := filepath.Join(t.TempDir(), "s.json")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"wrong layout", []string{"--layout", "firehose"}, []string{"layout firehose", "0 objects", "[open, open)"}},
		{"wrong layout, dry run", []string{"--layout", "firehose", "--dry-run"}, []string{"layout firehose"}},
		{"window with no folder", []string{"--from", "2025-01-01", "--to", "2025-01-02"}, []string{"layout daily", "[2025-01-01T00:00:00Z, 2025-01-02T00:00:00Z)"}},
		{"objects without an event in the window", []string{"--from", "2024-02-01T11", "--to", "2024-02-01T12", "--state", state}, []string{"layout daily", "none held an event", "2024-02-01T11:00:00Z"}},
		{"the same, rerun", []string{"--from", "2024-02-01T11", "--to", "2024-02-01T12", "--state", state}, []string{"none held an event"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"replay", bucket, "--sink", "stdout", "--http-addr", "off"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--state") {
				args = append(args, "--state", filepath.Join(t.TempDir(), "s.json"))
			}
			code, out, stderr := runCLI(t, "", args...)
			if code != exitBadInput || !strings.Contains(stderr, "nothing to replay") || !strings.Contains(stderr, bucket) {
				t.Errorf("exit %d, want %d and \"nothing to replay\" naming %s\nout: %s\nstderr: %s", code, exitBadInput, bucket, out, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
		})
	}
	if _, help, _ := runCLI(t, "", "replay", "--help"); !strings.Contains(help, "nothing to replay") || !strings.Contains(help, "--lateness") {
		t.Errorf("help does not document the nothing-to-replay exit or --lateness:\n%s", help)
	}
}

// TestReplayStateInUserStateDir: without --state the progress file goes to
// $XDG_STATE_HOME/eventrelay/ (else ~/.local/state/eventrelay/), created
// 0700, never the working directory; its path is logged; "." in two
// directories are two replays.
func TestReplayStateInUserStateDir(t *testing.T) {
	a := ftExport(t, t.TempDir(), "ocff-a-prd-public-events-export-bucket")
	b := ftExport(t, t.TempDir(), "ocff-b-prd-public-events-export-bucket")
	xdg, home := t.TempDir(), t.TempDir()
	kc := kafkatest.Start(t, 1, 2)
	for _, tc := range []struct {
		name string
		env  map[string]string
		dir  string
	}{
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": xdg, "HOME": home}, filepath.Join(xdg, "eventrelay")},
		{"HOME", map[string]string{"HOME": home}, filepath.Join(home, ".local", "state", "eventrelay")},
		{"relative XDG_STATE_HOME is ignored", map[string]string{"XDG_STATE_HOME": "rel", "HOME": home}, filepath.Join(home, ".local", "state", "eventrelay")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range []string{a, b} {
				t.Chdir(src)
				code, out, stderr := runCLIEnv(t, tc.env, "replay", ".", "--restart", "--brokers", kc.Addrs[0], "--http-addr", "off")
				if code != exitOK {
					t.Fatalf("replay of %s: exit %d\nout: %s\nstderr: %s", src, code, out, stderr)
				}
				if !strings.Contains(stderr, tc.dir) {
					t.Errorf("the state path under %s is not logged:\n%s", tc.dir, stderr)
				}
				if entries, _ := os.ReadDir(src); len(entries) != 1 {
					t.Errorf("the working directory %s holds %d entries, want only the export's day folder", src, len(entries))
				}
			}
			st, err := os.Stat(tc.dir)
			if err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("state directory %s: %v, %v; want mode 0700", tc.dir, st, err)
			}
			if files, _ := filepath.Glob(filepath.Join(tc.dir, "replay-*.json")); len(files) != 2 {
				t.Errorf("state files %v, want one per directory replayed as \".\"", files)
			}
		})
	}
	code, _, stderr := runCLIEnv(t, nil, "replay", a, "--brokers", kc.Addrs[0], "--http-addr", "off")
	if code != exitUsage || !strings.Contains(stderr, "--state") {
		t.Errorf("no XDG_STATE_HOME, HOME or --state: exit %d, want %d\n%s", code, exitUsage, stderr)
	}
	// A preview to stdout records no progress, so it needs no state directory.
	if code, out, stderr := runCLIEnv(t, nil, "replay", a, "--sink", "stdout", "--http-addr", "off"); code != exitOK || !strings.Contains(out, `"id":"ev-1"`) {
		t.Errorf("preview without a state directory: exit %d\n%s%s", code, out, stderr)
	}
}
