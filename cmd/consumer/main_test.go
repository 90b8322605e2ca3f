package main

import (
	"fmt"
	"os"
	"path/filepath"

	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/testnet"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: strings.NewReader(stdin), out: &out, err: &errb}, func(string) string { return "" })
	return code, out.String(), errb.String()
}

const fixtures = "../../internal/envelope/testdata/"

func TestDecodeMixedGzipFile(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "decode", "--log-format", "json", fixtures+"mixed_formats.jsonl.gz")
	if code != exitBadInput {
		t.Errorf("exit code %d, want %d", code, exitBadInput)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	sources := map[string]int{}
	for _, l := range lines {
		var ev struct {
			ID       string          `json:"id"`
			Source   string          `json:"source"`
			Raw      json.RawMessage `json:"raw"`
			Position struct {
				Line int `json:"line"`
			} `json:"position"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ID == "" || len(ev.Raw) == 0 {
			t.Fatalf("bad output line %q: %v", l, err)
		}
		sources[ev.Source]++
	}
	want := map[string]int{"fluent": 2, "fulfillmenttools": 2, "infobip": 1, "akeneo-logs": 1, "cloudevents": 1}
	if len(lines) != 7 || len(sources) != len(want) {
		t.Errorf("printed %d events by source %v, want 7 as %v", len(lines), sources, want)
	}
	for src, n := range want {
		if sources[src] != n {
			t.Errorf("source %s: %d events, want %d", src, sources[src], n)
		}
	}
	// Every bad record is reported with its position; the summary counts them.
	for _, wantLine := range []string{`"line":3`, `"line":5`, `"line":7`, `"line":10`} {
		if !strings.Contains(stderr, wantLine) {
			t.Errorf("stderr lacks the bad record at %s:\n%s", wantLine, stderr)
		}
	}
	if strings.Count(stderr, `"bad record"`) != 4 || !strings.Contains(stderr, `"bad":4`) {
		t.Errorf("want 4 bad records reported:\n%s", stderr)
	}
}

func TestDecodeStdinAndExitCodes(t *testing.T) {
	good := `{"id":"a","eventName":"order-created_event-v1","payload":{"id":"o1"},"created":"2024-02-01T09:20:39.411067+00:00"}` + "\n"
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"stdin good", good, []string{"decode", "--format", "fulfillmenttools", "--tenant", "acme"}, exitOK, `"tenant":"acme"`},
		{"dash is stdin", good, []string{"decode", "-", "--format=fulfillmenttools"}, exitOK, `"key":"o1"`},
		{"bad line", good + "{oops}\n", []string{"decode"}, exitBadInput, `"id":"a"`},
		{"unknown format", "", []string{"decode", "--format", "xml"}, exitUsage, ""},
		{"missing file", "", []string{"decode", "/nonexistent/file.json"}, exitBadInput, ""},
		{"bad flag", "", []string{"decode", "--nope"}, exitUsage, ""},
		{"help", "", []string{"help", "decode"}, exitOK, ""},
		{"unknown command", "", []string{"frobnicate"}, exitUsage, ""},
		{"no command", "", nil, exitUsage, ""}, // the usage goes to stderr: TestHelpOnStdout
		{"version", "", []string{"version"}, exitOK, "consumer dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %s)", code, tc.code, stderr)
			}
			if !strings.Contains(stdout, tc.out) {
				t.Errorf("stdout %q lacks %q", stdout, tc.out)
			}
		})
	}
}

func TestHelpTeaches(t *testing.T) {
	_, stdout, _ := runCLI(t, "", "decode", "--help")
	for _, want := range []string{"Examples:", "--format", "exit code is 1", "gzip"} {
		if !strings.Contains(stdout, want) && !strings.Contains(stdout, strings.TrimPrefix(want, "-")) {
			t.Errorf("decode help lacks %q", want)
		}
	}
}

// TestHelpOnStdout: help that was asked for, in every form and for every
// command, is printed on stdout with exit 0 (so `consumer help replay |
// less` works); `help help` once recursed until the stack overflowed.
func TestHelpOnStdout(t *testing.T) {
	forms := [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "help"}}
	for _, c := range commands() {
		forms = append(forms, []string{"help", c.name}, []string{c.name, "--help"}, []string{c.name, "-h"})
	}
	for _, args := range forms {
		code, stdout, stderr := runCLI(t, "", args...)
		if code != exitOK || !strings.Contains(strings.ToLower(stdout), "usage") || stderr != "" {
			t.Errorf("%v: exit %d, %d bytes on stdout, stderr %.200q; want exit 0 and the help on stdout", args, code, len(stdout), stderr)
		}
	}
	// A mistake still prints the usage on stderr and exits 2.
	for _, args := range [][]string{{}, {"replay", "--no-such-flag"}, {"version", "extra"}, {"nonsense"}} {
		code, stdout, stderr := runCLI(t, "", args...)
		if code != exitUsage || stdout != "" || !strings.Contains(strings.ToLower(stderr), "usage") {
			t.Errorf("%v: exit %d, stdout %.100q, stderr %d bytes; want exit 2 and the usage on stderr", args, code, stdout, len(stderr))
		}
	}
}

func TestCredentialsCommand(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/reader"
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "base-secret")
	sts := awstest.NewSTS(t, role, "the-right-id", awstest.Issued{AccessKeyID: "AKIDBASE", Secret: "base-secret"})
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	os.WriteFile(right, []byte("the-right-id"), 0o600)
	os.WriteFile(wrong, []byte("a-wrong-id"), 0o600)

	code, out, stderr := runCLI(t, "", "credentials", "--region", "eu-west-1", "--sts-endpoint", sts.URL, "--role-arn", role, "--external-id-file", right)
	if code != exitOK || !strings.Contains(out, "account 123456789012") {
		t.Errorf("right external ID: exit %d, out %q, err %q", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "", "credentials", "--region", "eu-west-1", "--sts-endpoint", sts.URL, "--role-arn", role, "--external-id-file", wrong)
	if code != exitCredentials || !strings.Contains(stderr, role) || !strings.Contains(stderr, "external ID") || strings.Contains(stderr, "a-wrong-id") {
		t.Errorf("wrong external ID: exit %d (want %d), stderr %q", code, exitCredentials, stderr)
	}
	if code, _, _ := runCLI(t, "", "credentials", "--role-arn", "not-an-arn"); code != exitUsage {
		t.Errorf("bad ARN: exit %d, want %d", code, exitUsage)
	}
	// A missing secret file is a usage error naming the flag, and an STS
	// that cannot be reached is not "AWS refused" (both once exited 3).
	code, _, stderr = runCLI(t, "", "credentials", "--sts-endpoint", sts.URL, "--role-arn", role, "--external-id-file", filepath.Join(dir, "missing"))
	if code != exitUsage || !strings.Contains(stderr, "--external-id-file") {
		t.Errorf("missing external ID file: exit %d (want %d), stderr %q", code, exitUsage, stderr)
	}
	code, _, stderr = runCLI(t, "", "credentials", "--region", "eu-west-1", "--sts-endpoint", fmt.Sprintf("http://127.0.0.1:%d", testnet.FreePorts(t, 1)[0]), "--role-arn", role, "--external-id-file", right)
	if code != exitBadInput || !strings.Contains(stderr, "refused") {
		t.Errorf("unreachable STS: exit %d (want %d), stderr %q", code, exitBadInput, stderr)
	}
}

// TestUsageNamesDemoCommand: the demo is no consumer command; help says
// where it went.
func TestUsageNamesDemoCommand(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "help")
	if code != exitOK || strings.Contains(stdout, "\n  demo ") || !strings.Contains(stdout, "go run ./cmd/demo") {
		t.Errorf("help: exit %d, want the demo named as its own command, not listed:\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "", "demo"); code != exitUsage || !strings.Contains(stderr, "make demo") {
		t.Errorf("consumer demo: exit %d (want %d), stderr:\n%s", code, exitUsage, stderr)
	}
}
