package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckValidatesWhatTheFileConfigures: a poll-only file used to
// fail with "source.kinesis.stream: must be set" because every file was
// checked as a stream configuration.
func TestConfigCheckValidatesWhatTheFileConfigures(t *testing.T) {
	const akeneo = "sink:\n  kafka:\n    brokers: [\"127.0.0.1:9092\"]\nsource:\n  akeneo:\n    pim_url: https://pim.example.com\n    token_file: /run/token\n    client_id: c1\n"
	const sinkOnly = "sink:\n  kafka:\n    brokers: [\"127.0.0.1:9092\"]\n"
	const stream = sinkOnly + "source:\n  kinesis:\n    stream: onewelcome-events\n"
	cases := []struct {
		name, file string
		args       []string
		code       int
		want       string
	}{
		{"poll only", akeneo, nil, exitOK, "is valid for akeneo-logs"},
		{"poll only checked for stream", akeneo, []string{"--for", "stream"}, exitUsage, "source.kinesis.stream: must be set"},
		{"sink only is a replay file", sinkOnly, nil, exitOK, "is valid for replay"},
		{"stream", stream, nil, exitOK, "is valid for stream"},
		{"fluent asked but not configured", sinkOnly, []string{"--for", "fluent-events"}, exitUsage, "source.fluent."},
		{"unknown target", sinkOnly, []string{"--for", "kinesis"}, exitUsage, "--for: want stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.file), 0o644)
			code, stdout, stderr := runCLI(t, "", append(append([]string{"config", "check"}, tc.args...), path)...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
}
