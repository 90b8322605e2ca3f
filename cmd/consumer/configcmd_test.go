package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/eventrelay/eventrelay/internal/sink"
)

// TestConfigCheckValidatesWhatTheFileConfigures: a poll-only file used to
// fail with "source.kinesis.stream: must be set" because every file was
// checked as a stream configuration.
func TestConfigCheckValidatesWhatTheFileConfigures(t *testing.T) {
	const akeneo = "sink:\n  kafka:\n    brokers: [\"127.0.0.1:9092\"]\nsource:\n  akeneo:\n    pim_url: https://pim.example.com\n    token: tok\n    client_id: c1\n"
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
		{"negative max_event_size", stream + "    max_event_size: -1\n", nil, exitUsage, "source.kinesis.max_event_size: must be positive, got -1"},
		{"TLS cert without key", sinkOnly + "    tls:\n      enabled: true\n      cert_file: /nonexistent/client.pem\n", nil, exitUsage, "sink.kafka.tls.cert_file: cert_file and key_file must be set together"},
		{"negative shard_sync_interval", stream + "    shard_sync_interval: -10s\n", nil, exitUsage, "source.kinesis.shard_sync_interval: must be at least 1ms, got -10s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.file), 0o644)
			code, stdout, stderr := runCLI(t, "", append(append([]string{"config", "check"}, tc.args...), path)...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s%s", code, tc.code, tc.want, stdout, stderr)
			}
			if strings.Contains(stderr, "open :") {
				t.Errorf("an error about reading an unset file:\n%s", stderr)
			}
		})
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestConfigCheckPrintsEffectiveValues: config check prints each
// configured section with its defaults applied (topic: events.{source},
// page_size: 100, allow_auto_topic_creation: true), never a secret, and
// leaves sections the file does not configure empty. Golden files under
// testdata/configcheck; -update rewrites them.
func TestConfigCheckPrintsEffectiveValues(t *testing.T) {
	cases := []struct{ name, file string }{
		{"stream", "source:\n  kinesis:\n    stream: onewelcome-events\nsink:\n  kafka:\n    brokers: [kafka:9092]\n" +
			"aws:\n  stream_role:\n    role_arn: arn:aws:iam::111122223333:role/r\n    external_id: ext-s3cr3t\n"},
		{"akeneo", "sink:\n  kafka:\n    brokers: [kafka:9092]\n    sasl:\n      mechanism: SCRAM-SHA-512\n      username: u\n      password: hunter2\n    tls:\n      enabled: true\n" +
			"source:\n  akeneo:\n    pim_url: https://pim.example.com\n    token: tok-s3cr3t\n    client_id: c1\n"},
		{"fluent", "sink:\n  type: stdout\nsource:\n  fluent:\n    base_url: https://acme.api.fluentretail.com\n    username: u\n    password: pw-s3cr3t\n    client_id: c\n    client_secret: cs-s3cr3t\n    page_size: 500\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.file), 0o644)
			code, stdout, stderr := runCLI(t, "", "config", "check", path)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strings.ReplaceAll(stdout, path, "c.yaml")
			for _, secret := range []string{"s3cr3t", "hunter2"} {
				if strings.Contains(got, secret) {
					t.Errorf("output shows a secret (%s):\n%s", secret, got)
				}
			}
			golden := filepath.Join("testdata", "configcheck", tc.name+".golden")
			if *updateGolden {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("config check output differs from %s:\n%s", golden, got)
			}
		})
	}
}

// TestExitCodes: startup errors map to the documented exit codes.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("registering: %w", kinesis.ErrConsumerLimit), exitUsage},
		{fmt.Errorf("topic: %w", sink.ErrTopicMissing), exitTopicMissing},
		{fmt.Errorf("assume: %w", assumerole.ErrAccessDenied), exitCredentials},
		{errors.New("anything else"), exitBadInput},
	} {
		if got := exitFor(tc.err); got != tc.want {
			t.Errorf("exitFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
