package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExampleIsValid keeps `consumer config example` true to the code.
func TestExampleIsValid(t *testing.T) {
	p := write(t, string(Example()))
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateStream(); err != nil {
		t.Fatalf("the shipped example does not validate: %v", err)
	}
	if c.Source.Kinesis.Stream != "onewelcome-events" || c.Sink.Kafka.Linger != 5*time.Millisecond || len(c.Sink.Kafka.Brokers) != 2 {
		t.Errorf("example parsed as %+v", c)
	}
}

func TestEnvOverrides(t *testing.T) {
	p := write(t, "sink:\n  kafka:\n    brokers: [a:1]\nsource:\n  kinesis:\n    stream: s\n")
	c, err := Load(p, env(map[string]string{
		"EVENTRELAY_SINK_KAFKA_BROKERS":                   "b:1, c:2",
		"EVENTRELAY_SOURCE_KINESIS_FAILOVER_TIME":         "3s",
		"EVENTRELAY_SOURCE_KINESIS_LEASE_STEALING":        "true",
		"EVENTRELAY_SOURCE_KINESIS_MAX_RECORDS":           "500",
		"EVENTRELAY_AWS_REGION":                           "eu-central-1",
		"EVENTRELAY_AWS_STREAM_ROLE_EXTERNAL_ID":          "from-env",
		"EVENTRELAY_SINK_KAFKA_SASL_PASSWORD":             "pw",
		"EVENTRELAY_SOURCE_KINESIS_INITIAL_TIMESTAMP":     "2024-02-01T00:00:00Z",
		"EVENTRELAY_AWS_ENDPOINTS_KINESIS":                "http://127.0.0.1:4568",
		"EVENTRELAY_SOURCE_KINESIS_FORMAT":                "onewelcome",
		"EVENTRELAY_SINK_KAFKA_MAX_MESSAGE_BYTES":         "2000000",
		"EVENTRELAY_SINK_KAFKA_BATCH_BYTES":               "4000000",
		"EVENTRELAY_SINK_KAFKA_RETRY_BACKOFF_MAX":         "1m",
		"EVENTRELAY_SOURCE_KINESIS_ENHANCED_FAN_OUT":      "false",
		"EVENTRELAY_SOURCE_KINESIS_MAX_LEASES_FOR_WORKER": "4",
		"EVENTRELAY_SOURCE_KINESIS_BALANCE_LEASES":        "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Source.Kinesis
	if strings.Join(c.Sink.Kafka.Brokers, ",") != "b:1,c:2" || k.FailoverTime != 3*time.Second || !k.LeaseStealing || k.MaxRecords != 500 ||
		c.AWS.Region != "eu-central-1" || c.AWS.StreamRole.ExternalID.Reveal() != "from-env" || c.AWS.Endpoints.Kinesis != "http://127.0.0.1:4568" ||
		k.InitialTimestamp.Year() != 2024 || c.Sink.Kafka.MaxMessageBytes != 2000000 || k.MaxLeasesForWorker != 4 ||
		k.BalanceLeases == nil || *k.BalanceLeases {
		t.Errorf("overrides not applied: %+v", c)
	}
	if _, err := Load(p, env(map[string]string{"EVENTRELAY_SOURCE_KINESIS_FAILOVER_TIME": "soon"})); err == nil ||
		!strings.Contains(err.Error(), "source.kinesis.failover_time (from EVENTRELAY_SOURCE_KINESIS_FAILOVER_TIME)") {
		t.Errorf("bad duration error = %v", err)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"sink:\n  kafka:\n    brokers: []\nsource:\n  kinesis:\n    stream: s\n", "sink.kafka.brokers: must not be empty"},
		{"sink:\n  kafka:\n    brokers: [a:1]\n", "source.kinesis.stream: must be set"},
		{"sink:\n  type: s3\nsource:\n  kinesis:\n    stream: s\n", "sink.type: want kafka or stdout"},
		{"log:\n  level: loud\nsink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\n", "log.level"},
		{"sink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\n    initial_position: NOW\n", "source.kinesis.initial_position"},
		{"sink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\naws:\n  stream_role:\n    role_arn: nope\n", "aws.stream_role.role_arn"},
		// config check once passed addresses every command refuses to listen on.
		{"http:\n  addr: nonsense\nsink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\n", `http.addr: want host:port (:8080, 127.0.0.1:9090) or off, got "nonsense"`},
		{"http:\n  addr: \":http\"\nsink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\n", `http.addr: port "http" is not a number`},
		{"http:\n  addr: \":70000\"\nsink:\n  type: stdout\nsource:\n  kinesis:\n    stream: s\n", `http.addr: port "70000" is not a number`},
	}
	for _, tc := range tests {
		c, err := Load(write(t, tc.yaml), env(nil))
		if err == nil {
			err = c.ValidateStream()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Load(write(t, "sink:\n  kafak: {}\n"), env(nil)); err == nil || !strings.Contains(err.Error(), "kafak") {
		t.Errorf("unknown field error = %v", err)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c, err := Load(write(t, "aws:\n  stream_role:\n    role_arn: arn:aws:iam::1:role/r\n    external_id: s3cr3t-ext\nsink:\n  kafka:\n    sasl:\n      password: hunter2\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cr3t-ext") || strings.Contains(string(out), "hunter2") || !strings.Contains(string(out), "<redacted>") {
		t.Errorf("redacted config:\n%s", out)
	}
}

// TestFiles loads testdata/*.good.yaml (must validate for the stream) and
// *.bad.yaml (must fail with the error in their "# want:" line).
func TestFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 5 {
		t.Fatalf("only %d config fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f, env(nil))
			if err == nil {
				err = c.ValidateStream()
			}
			if strings.HasSuffix(f, ".good.yaml") {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			data, _ := os.ReadFile(f)
			first, _, _ := strings.Cut(string(data), "\n")
			want := strings.TrimSpace(strings.TrimPrefix(first, "# want:"))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
	}
}

// TestFileErrorsNamePath: an unknown key or a value of the wrong type is
// reported by its path in the file, as README promises, not as a Go type
// ("field streem not found in type kinesis.Config").
func TestFileErrorsNamePath(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"source:\n  kinesis:\n    streem: s\n", "source.kinesis.streem: unknown field (line 3); did you mean stream?"},
		{"sink:\n  kafak: {}\n", "sink.kafak: unknown field (line 2); did you mean kafka?"},
		{"aws:\n  regoin: eu-west-1\n", "aws.regoin: unknown field (line 2); did you mean region?"},
		{"aws:\n  stream_role:\n    external_id_fil: /x\n", "aws.stream_role.external_id_fil: unknown field (line 3); did you mean external_id_file?"},
		{"source:\n  akeneo:\n    intervall: 1m\n", "source.akeneo.intervall: unknown field (line 3); did you mean interval?"},
		{"source:\n  akeneo:\n    params: {fromm: f}\n", "source.akeneo.params.fromm: unknown field (line 3); did you mean from?"},
		{"bogus: 1\n", "bogus: unknown field (line 1)"},
		{"source:\n  kinesis:\n    max_records: many\n", `source.kinesis.max_records: want an integer, got "many" (line 3)`},
		{"source:\n  kinesis:\n    lease_stealing: sometimes\n", `source.kinesis.lease_stealing: want true or false, got "sometimes" (line 3)`},
		{"source:\n  kinesis:\n    balance_leases: sometimes\n", `source.kinesis.balance_leases: want true or false, got "sometimes" (line 3)`},
		{"sink:\n  kafka:\n    brokers: a:9092\n", `sink.kafka.brokers: want a list of strings, got "a:9092" (line 3)`},
		{"sink:\n  kafka: [a]\n", `sink.kafka: want a mapping of fields, got a list (line 2)`},
		{"sink:\n  kafka:\n    allow_auto_topic_creation: maybe\n", `sink.kafka.allow_auto_topic_creation: want true or false, got "maybe" (line 3)`},
		{"- a\n", "configuration: want a mapping of fields, got a list (line 1)"},
	}
	for _, tc := range tests {
		_, err := Load(write(t, tc.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err := Load(write(t, "base: &b {brokers: [a:1]}\nsink:\n  kafka:\n    <<: *b\n    topic: t\nlease: &r {}\naws:\n  lease_table_role: *r\n  replay_role:\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "base: unknown field") {
		t.Errorf("anchors at top level: %v", err)
	}
	if c, err = Load(write(t, "sink:\n  kafka: &k\n    brokers: [a:1]\naws:\n  replay_role:\n"), env(nil)); err != nil || c.Sink.Kafka.Brokers[0] != "a:1" {
		t.Errorf("anchor and empty section: %v, %+v", err, c.Sink.Kafka)
	}
	if _, err := Load(write(t, ""), env(nil)); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

// TestCheckEnv: an EVENTRELAY_ variable that overrides no field is an error
// naming it, with the nearest field's variable; the variables read that
// are not fields are allowed.
func TestCheckEnv(t *testing.T) {
	err := CheckEnv([]string{"PATH=/bin", "EVENTRELAY_SOURCE_KINESIS_STREEM=s", "EVENTRELAY_SINK_KAFKA_BROKERS=a:1", "EVENTRELAY_NONSENSE=1", "EVENTRELAY_AWS_STREAM_ROLE=x"})
	for _, want := range []string{
		"environment variable EVENTRELAY_SOURCE_KINESIS_STREEM: matches no configuration field; did you mean EVENTRELAY_SOURCE_KINESIS_STREAM?",
		"environment variable EVENTRELAY_NONSENSE: matches no configuration field",
		"environment variable EVENTRELAY_AWS_STREAM_ROLE: matches no configuration field",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "BROKERS") {
		t.Errorf("a field's variable reported: %v", err)
	}
	ok := []string{"EVENTRELAY_CONFIG=/c.yaml", "EVENTRELAY_REQUIRE_KCAT=1", "EVENTRELAY_REQUIRE_EMULATORS=1", "EVENTRELAY_REQUIRE_HELM=1",
		"EVENTRELAY_RELIABILITY=full", "EVENTRELAY_TEST_LOG=debug", "EVENTRELAY_BENCH_MB=200", "EVENTRELAY_BENCH_PAYLOAD=padded",
		"EVENTRELAY_AWS_ENDPOINTS_STS=http://x", "EVENTRELAY_AWS_REGION=eu-west-1", "EVENTRELAY_SOURCE_AKENEO_PARAMS_FROM=f",
		"EVENTRELAY_SINK_KAFKA_ALLOW_AUTO_TOPIC_CREATION=false", "EVENTRELAY_SOURCE_FLUENT_PAGE_SIZE=10"}
	if err := CheckEnv(ok); err != nil {
		t.Errorf("allowed variables refused: %v", err)
	}
}
