package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
)

func TestRouter(t *testing.T) {
	ev := &envelope.Event{Source: envelope.FormatOneWelcome, Type: "UserSignedInEvent", Tenant: "50a7/dbf5", Category: "public"}
	noCat := &envelope.Event{Source: envelope.FormatFulfillmenttools, Type: "order-created_event-v1"}
	named := &envelope.Event{Source: envelope.FormatFluent, Type: "ORCHESTRATION_AUDIT", Name: "Send Event", Category: "ACTION"}
	tests := []struct {
		template string
		ev       *envelope.Event
		want     string
		wantErr  string
	}{
		{"events", ev, "events", ""},
		{"events.{source}", ev, "events.onewelcome", ""},
		{"events.{source}.{category}", ev, "events.onewelcome.public", ""},
		{"events.{source}.{category}", noCat, "fallback", ""},
		{"tenant-{tenant}", ev, "tenant-50a7_dbf5", ""},
		{"{type}", noCat, "order-created_event-v1", ""},
		{"fluent.{name}", named, "fluent.Send_Event", ""},
		{"events.{source}.{category}.{name}", named, "events.fluent.ACTION.Send_Event", ""},
		{"fluent.{name}", noCat, "fallback", ""},
		{"fluent.{name}", ev, "fallback", ""},
		// Names a user chose (Fluent rule names) that Kafka forbids as a topic.
		{"{name}", &envelope.Event{Name: "."}, "fallback", ""},
		{"{name}", &envelope.Event{Name: ".."}, "fallback", ""},
		{"{name}", &envelope.Event{Name: strings.Repeat("x", 250)}, "fallback", ""},
		{"fluent.{name}", &envelope.Event{Name: "Bestellung Ä/ü"}, "fluent.Bestellung____", ""},
		{"events.{nope}", ev, "", "unknown placeholder {nope}"},
		{"events.{source", ev, "", "unclosed"},
		{"bad topic", ev, "", "not a valid Kafka topic"},
	}
	for _, tc := range tests {
		r, err := NewRouter(tc.template, "fallback")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewRouter(%q) error = %v, want %q", tc.template, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewRouter(%q): %v", tc.template, err)
		}
		if got := r.Topic(tc.ev); got != tc.want {
			t.Errorf("%q: topic = %q, want %q", tc.template, got, tc.want)
		}
	}
	// The memo a delivery uses answers as Topic, whatever came before.
	var evs []*envelope.Event
	for _, tc := range tests {
		if tc.wantErr == "" {
			evs = append(evs, tc.ev, tc.ev)
		}
	}
	for _, tc := range tests {
		r, err := NewRouter(tc.template, "fallback")
		if err != nil {
			continue
		}
		var m topicMemo
		for _, e := range evs {
			if got, want := r.topicMemo(e, &m), r.Topic(e); got != want {
				t.Errorf("%q: memo says %q for %+v, Topic %q", tc.template, got, e, want)
			}
		}
	}
}

func TestKafkaConfigValidate(t *testing.T) {
	ok := KafkaConfig{Brokers: []string{"127.0.0.1:9092"}}
	tests := []struct {
		name string
		mod  func(*KafkaConfig)
		want string // "" means valid
	}{
		{"defaults", func(*KafkaConfig) {}, ""},
		{"no brokers", func(c *KafkaConfig) { c.Brokers = nil }, "sink.kafka.brokers: must not be empty"},
		{"broker without port", func(c *KafkaConfig) { c.Brokers = []string{"kafka"} }, `sink.kafka.brokers: "kafka" is not host:port`},
		{"bad template", func(c *KafkaConfig) { c.Topic = "x.{who}" }, "sink.kafka.topic: unknown placeholder {who}"},
		{"bad dlq", func(c *KafkaConfig) { c.DLQTopic = "dead letters" }, "sink.kafka.dlq_topic"},
		{"compression", func(c *KafkaConfig) { c.Compression = "brotli" }, "sink.kafka.compression: want none, gzip, snappy, lz4 or zstd"},
		{"batch bytes below message size", func(c *KafkaConfig) { c.BatchBytes = 2048 }, "sink.kafka.batch_bytes"},
		{"sasl without user", func(c *KafkaConfig) { c.SASL.Mechanism = "SCRAM-SHA-512"; c.SASL.PasswordFile = "/x" }, "sink.kafka.sasl.username"},
		{"plain without tls", func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}
		}, "sink.kafka.sasl.mechanism: PLAIN sends the password in clear text"},
		{"plain without tls, explicitly allowed", func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p", AllowPlaintext: true}
		}, ""},
		{"plain with tls", func(c *KafkaConfig) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}
			c.TLS.Enabled = true
		}, ""},
		{"unknown sasl", func(c *KafkaConfig) { c.SASL.Mechanism = "GSSAPI" }, "sink.kafka.sasl.mechanism: want PLAIN"},
		{"half mtls", func(c *KafkaConfig) { c.TLS.CertFile = "c.pem" }, "sink.kafka.tls.cert_file"},
		{"negative batch size", func(c *KafkaConfig) { c.BatchSize = -1 }, "sink.kafka.batch_size: must be positive, got -1"},
		{"negative linger", func(c *KafkaConfig) { c.Linger = -time.Millisecond }, "sink.kafka.linger: must be positive, got -1ms"},
		{"negative write timeout", func(c *KafkaConfig) { c.WriteTimeout = -time.Second }, "sink.kafka.write_timeout: must be positive, got -1s"},
		{"negative backoff", func(c *KafkaConfig) { c.RetryBackoffMin, c.RetryBackoffMax = -time.Second, -time.Second }, "sink.kafka.retry_backoff_min: must be positive, got -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "hunter2"}
	for _, s := range []string{
		func() string { b, _ := json.Marshal(c); return string(b) }(),
		func() string { return strings.Join([]string{c.Password.String()}, "") }(),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

// TestHeadersContract pins the Kafka message contract: these headers are
// what downstream teams rely on.
func TestHeadersContract(t *testing.T) {
	ev := &envelope.Event{ID: "3b307680", Type: "UserSignedInEvent", Source: envelope.FormatOneWelcome, Tenant: "t1",
		Category: "public", OccurredAt: time.Date(2022, 7, 13, 16, 59, 43, 596191000, time.UTC),
		Pos: envelope.Position{Shard: "shardId-000000000003", Sequence: "4959", Index: 2}}
	got := map[string]string{}
	var order []string
	for _, h := range eventHeaders(nil, ev) {
		got[h.Key] = string(h.Value)
		order = append(order, h.Key)
	}
	want := map[string]string{
		"event-id": "3b307680", "event-type": "UserSignedInEvent", "event-source": "onewelcome", "event-tenant": "t1",
		"event-category": "public", "event-occurred-at": "2022-07-13T16:59:43.596191Z", "source-position": "shardId-000000000003/4959#2",
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want %v", order, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	// Replay positions differ only in source-position.
	replay := *ev
	replay.Pos = envelope.Position{Object: "public/2022/07/13/16/f.gz", Line: 4, Offset: 100}
	for _, h := range eventHeaders(nil, &replay) {
		if h.Key != HeaderPosition && got[h.Key] != string(h.Value) {
			t.Errorf("replayed event header %s = %q, live %q", h.Key, h.Value, got[h.Key])
		}
	}
	if got := eventHeaders(nil, &envelope.Event{ID: "x"}); len(got) != 5 {
		t.Errorf("empty tenant, category and name should be omitted, got %d headers", len(got))
	}
	// Fluent's event name is a header of its own, after the others.
	fluent := envelope.Event{ID: "faac8262", Type: "ORCHESTRATION_AUDIT", Name: "Send Event", Source: envelope.FormatFluent}
	h := eventHeaders(nil, &fluent)
	if last := h[len(h)-1]; len(h) != 6 || last.Key != "event-name" || string(last.Value) != "Send Event" {
		t.Errorf("fluent headers %v, want event-name: Send Event", h)
	}
}

func TestStdoutSink(t *testing.T) {
	var out bytes.Buffer
	s := NewStdout(&out, nil)
	evs := testEvents(2, 2, 5)
	b := Batch{Events: evs, Dead: []DeadLetter{{Format: "onewelcome", Kind: "syntax", Reason: "bad", Raw: []byte("\xff\x00")},
		{Format: "onewelcome", Kind: "too_large", Reason: "big", Raw: []byte("{\"ab"), Size: 9000}}}
	if err := s.Deliver(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines", len(lines))
	}
	var ev struct {
		ID  string          `json:"id"`
		Raw json.RawMessage `json:"raw"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev.ID != evs[0].ID || string(ev.Raw) != string(evs[0].Raw) {
		t.Errorf("event line %q: %v", lines[0], err)
	}
	type deadLine struct {
		DeadLetter struct {
			Kind          string `json:"kind"`
			Raw           string `json:"raw"`
			RawBase64     []byte `json:"raw_base64"`
			TruncatedFrom *int64 `json:"truncated_from"`
		} `json:"dead_letter"`
	}
	var dl deadLine
	if err := json.Unmarshal([]byte(lines[2]), &dl); err != nil || dl.DeadLetter.Kind != "syntax" || string(dl.DeadLetter.RawBase64) != "\xff\x00" || dl.DeadLetter.TruncatedFrom != nil {
		t.Errorf("dead letter line %q: %v", lines[2], err)
	}
	dl = deadLine{}
	if err := json.Unmarshal([]byte(lines[3]), &dl); err != nil || dl.DeadLetter.Raw != "{\"ab" || dl.DeadLetter.TruncatedFrom == nil || *dl.DeadLetter.TruncatedFrom != 9000 {
		t.Errorf("prefix dead letter line %q: %v, want truncated_from 9000", lines[3], err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Deliver(ctx, &b); err == nil {
		t.Error("Deliver on a cancelled context succeeded")
	}
}

// TestSASLPasswordFile: the file's line ending is not part of the password;
// an empty or missing file is an error naming the setting.
func TestSASLPasswordFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"CRLF", "hunter2\r\n", ""},
		{"LF", "hunter2\n", ""},
		{"empty", "", "sink.kafka.sasl.password_file: "},
		{"missing", "-", "sink.kafka.sasl.password_file: open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.content != "-" {
				os.WriteFile(path, []byte(tc.content), 0o600)
			}
			m, err := SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: path}.build()
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if p, ok := m.(plain.Mechanism); err != nil || !ok || p.Password != "hunter2" {
				t.Fatalf("mechanism %#v, %v", m, err)
			}
		})
	}
}

// TestArenaSlicesSurviveGrowth: keys and header values handed out by an
// arena keep their bytes when later events make the arena grow.
func TestArenaSlicesSurviveGrowth(t *testing.T) {
	a := newArena(1, nil) // far too small: it grows many times
	type built struct {
		key  []byte
		hdrs []kafka.Header
		ev   envelope.Event
	}
	var all []built
	for i := range 500 {
		ev := envelope.Event{ID: fmt.Sprintf("id-%d", i), Key: fmt.Sprintf("key-%d", i), Type: "T", Source: "onewelcome",
			Tenant: strings.Repeat("t", i%7), Pos: envelope.Position{Object: "o.json", Line: int64(i + 1), Offset: int64(i * 100), Index: i % 10}}
		all = append(all, built{a.bytes(ev.Key), eventHeaders(a, &ev), ev})
	}
	for _, b := range all {
		want := eventHeaders(nil, &b.ev)
		if string(b.key) != b.ev.Key || fmt.Sprint(b.hdrs) != fmt.Sprint(want) {
			t.Fatalf("event %s: key %q headers %v, want %q %v", b.ev.ID, b.key, b.hdrs, b.ev.Key, want)
		}
	}
}
