package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runEnv is runCLI with an environment: getenv reads env, and environ
// lists it as os.Environ does.
func runEnv(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb, environ: environ}, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// TestConfigCheckReadsFiles: config check reads the files the command
// would read when it starts, so it no longer passes a configuration that
// stream or poll then rejects (a missing external_id_file, an empty
// sasl.password_file, a missing token_file); exit 2 naming the setting.
func TestConfigCheckReadsFiles(t *testing.T) {
	dir := t.TempDir()
	good, empty, missing := filepath.Join(dir, "good"), filepath.Join(dir, "empty"), filepath.Join(dir, "missing")
	os.WriteFile(good, []byte("s3cr3t\n"), 0o600)
	os.WriteFile(empty, nil, 0o600)
	const stream = "source:\n  kinesis:\n    stream: s\n"
	kafka := func(pwFile string) string {
		return "sink:\n  kafka:\n    brokers: [a:9092]\n    sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: " + pwFile + "}\n"
	}
	role := func(idFile string) string {
		return "aws:\n  stream_role: {role_arn: 'arn:aws:iam::1:role/r', external_id_file: " + idFile + "}\n"
	}
	akeneo := func(tokenFile string) string {
		return "source:\n  akeneo: {pim_url: https://pim, client_id: c, token_file: " + tokenFile + "}\n"
	}
	cases := []struct {
		name, file string
		code       int
		want       string
	}{
		{"all files readable", stream + kafka(good) + role(good), exitOK, "is valid for stream"},
		{"missing external_id_file", stream + kafka(good) + role(missing), exitUsage, "aws.stream_role.external_id_file: open " + missing},
		{"empty sasl.password_file", stream + kafka(empty) + role(good), exitUsage, "sink.kafka.sasl.password_file: " + empty + ": file is empty"},
		{"missing token_file", kafka(good) + akeneo(missing), exitUsage, "source.akeneo.token_file: open " + missing},
		{"token_file readable", kafka(good) + akeneo(good), exitOK, "is valid for akeneo-logs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.file), 0o644)
			code, stdout, stderr := runEnv(t, nil, "config", "check", path)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) || strings.Contains(stdout+stderr, "s3cr3t") {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
}

// TestUnknownEnvVariable: an EVENTRELAY_ variable that matches no field
// stops config check and the commands with exit 2, naming it and the
// nearest field's variable; it used to be ignored without a word.
func TestUnknownEnvVariable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("sink:\n  type: stdout\n"), 0o644)
	typo := map[string]string{"EVENTRELAY_SINK_KAFKA_BROKER": "a:9092", "EVENTRELAY_CONFIG": path, "EVENTRELAY_TEST_LOG": "debug"}
	const want = "EVENTRELAY_SINK_KAFKA_BROKER: matches no configuration field; did you mean EVENTRELAY_SINK_KAFKA_BROKERS?"
	for _, args := range [][]string{
		{"config", "check", path},
		{"stream"},
		{"poll", "fluent-events", "--once"},
		{"replay", "--dry-run", t.TempDir()},
	} {
		code, stdout, stderr := runEnv(t, typo, args...)
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", args, code, exitUsage, want, stdout, stderr)
		}
	}
	if code, _, stderr := runEnv(t, map[string]string{"EVENTRELAY_CONFIG": path, "EVENTRELAY_RELIABILITY": "full"}, "config", "check", path); code != exitOK {
		t.Errorf("allowed variables refused: exit %d: %s", code, stderr)
	}
}

// TestSizeFlagsAreUsageErrors: --max-event-size and --max-record-size
// must be positive in every command that takes them; -1 is a usage error
// (exit 2) naming the flag, not a failure per object at run time.
func TestSizeFlagsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"decode", "--max-event-size", "-1", "-"},
		{"decode", "--max-record-size", "-1", "-"},
		{"replay", "--sink", "stdout", "--max-event-size", "-1", dir},
		{"replay", "--sink", "stdout", "--max-record-size", "-1", dir},
		{"replay", "--dry-run", "--max-event-size", "-1", dir},
	} {
		flagName := args[len(args)-3]
		code, stdout, stderr := runEnv(t, nil, args...)
		if code != exitUsage || !strings.Contains(stderr, flagName+": must be positive, got -1") {
			t.Errorf("%v: exit %d, want %d naming %s:\n%s%s", args, code, exitUsage, flagName, stdout, stderr)
		}
	}
}

// TestNegativeFlagsAreUsageErrors: a negative count, rate or duration is a
// usage error naming the flag (they once ran with the default, silently);
// 0 keeps meaning the default (or no limit, for --rate).
func TestNegativeFlagsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		flag, value, want string
	}{
		{"--concurrency", "-1", "--concurrency: must not be negative (0 takes the default), got -1"},
		{"--rate", "-5", "--rate: must not be negative (0: no limit), got -5"},
		{"--rate", "NaN", "--rate: must not be negative (0: no limit), got NaN"},
		{"--drain-timeout", "-1s", "--drain-timeout: must not be negative (0 takes the default), got -1s"},
		{"--progress-timeout", "-1s", "--progress-timeout: must not be negative (0 takes the default), got -1s"},
	} {
		for _, mode := range []string{"--dry-run", "--sink=stdout"} {
			code, stdout, stderr := runEnv(t, nil, "replay", mode, tc.flag, tc.value, dir)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("replay %s %s %s: exit %d, want %d and %q:\n%s%s", mode, tc.flag, tc.value, code, exitUsage, tc.want, stdout, stderr)
			}
		}
	}
	code, _, stderr := runEnv(t, nil, "stream", "--sink", "stdout", "--stream", "s", "--backfill", dir, "--backfill-from", "2024-01-01", "--backfill-overlap", "-1h")
	if code != exitUsage || !strings.Contains(stderr, "--backfill-overlap: must be positive, got -1h0m0s") {
		t.Errorf("stream --backfill-overlap -1h: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = runEnv(t, nil, "stream", "--sink", "stdout", "--stream", "s", "--backfill", dir, "--backfill-from", "yesterday")
	if code != exitUsage || !strings.Contains(stderr, "--backfill-from: ") {
		t.Errorf("stream --backfill-from yesterday: exit %d, want the error to name the flag: %s", code, stderr)
	}
}
