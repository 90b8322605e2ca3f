package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// envelopeFixtures holds vendor fixtures written from the seed pages.
const envelopeFixtures = "../envelope/testdata"

// decodeFixture decodes a fixture file the way a directory replay does and
// returns its events.
func decodeFixture(t *testing.T, name string, f envelope.Format) []envelope.Event {
	t.Helper()
	in, err := os.Open(filepath.Join(envelopeFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	d, err := envelope.NewDecoder(envelope.Options{Format: f})
	if err != nil {
		t.Fatal(err)
	}
	var evs []envelope.Event
	err = d.DecodeObject(in, name, 0, func(r *envelope.Result) error {
		if len(r.Errors) > 0 {
			t.Fatalf("%s: %v", name, r.Errors[0])
		}
		evs = append(evs, r.Events...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// jsonValues splits a file into its top-level JSON values with
// encoding/json, independently of the envelope framer, keyed by "id" (the
// seed's examples reappear in several fixtures).
func jsonValues(t *testing.T, name string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(envelopeFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		var ev struct{ ID string }
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		out[ev.ID] = raw
	}
}

// TestKafkaValueIsVendorBytes sends events whose strings hold '<', '>',
// '&', U+2028 and vendor escapes, and pretty-printed multi-line events
// framed from a file, through the Kafka sink, and reads them back with
// kcat: every value must be the file's bytes for that event, unchanged.
func TestKafkaValueIsVendorBytes(t *testing.T) {
	c := kafkatest.Start(t, 1, 2, "events.fluent", "events.dlq")
	k, _ := newTestKafka(t, c.Addrs, nil)
	want := map[string][]byte{}
	var b Batch
	for _, name := range []string{"fluent_escapes.json", "fluent_seed_pretty.json"} {
		b.Events = append(b.Events, decodeFixture(t, name, envelope.FormatFluent)...)
		for id, v := range jsonValues(t, name) {
			want[name+" "+id] = v
		}
	}
	if err := k.Deliver(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Kcat(t, c.Addrs, "events.fluent")
	values := kafkatest.KcatValues(t, c.Addrs, "events.fluent")
	if len(recs) != len(want) || len(values) != len(want) {
		t.Fatalf("kcat read %d records (%d values), want %d", len(recs), len(values), len(want))
	}
	var escapes, pretty int
	for _, r := range recs {
		object, _, _ := strings.Cut(r.Headers[HeaderPosition], ":")
		id := object + " " + r.Headers[HeaderEventID]
		got := values[[2]int64{int64(r.Partition), r.Offset}]
		if !bytes.Equal(got, want[id]) {
			t.Errorf("event %s: value\n%q\nwant the input bytes\n%q", id, got, want[id])
		}
		if bytes.ContainsAny(got, "<>&\u2028") {
			escapes++
		}
		if bytes.Contains(got, []byte("\n  ")) {
			pretty++
		}
	}
	if escapes < 3 || pretty < 9 {
		t.Errorf("fixture lost its point: %d values with <>&U+2028, %d pretty-printed", escapes, pretty)
	}
}

// TestKafkaEventNameHeaderAndTopic routes the Fluent seed events on {name}
// and reads them back with kcat: the event-name header carries Fluent's
// name, and is absent for a null name and for other sources, whose events
// go to the fallback topic.
func TestKafkaEventNameHeaderAndTopic(t *testing.T) {
	const headerName = "event-name" // the contract's spelling, not the constant
	want := map[string]struct{ topic, name string }{
		"f8b23900-a4dd-11ec-a45b-83d8b1ae3f6a": {"events.fluent.snapshot", "snapshot"},
		"7b942482-a56c-11ec-9f8f-a7305b1811a2": {"events.fluent.SelectProposedFulfilment", "SelectProposedFulfilment"},
		"7b942481-a56c-11ec-9f8f-a7305b1811a2": {"events.fluent.TEST.order.SelectProposedFulfilment", "TEST.order.SelectProposedFulfilment"},
		"faac8262-a4dd-11ec-a568-2d00cfceb356": {"events.fluent.Send_Event", "Send Event"},
		"fd424870-a4dd-11ec-a568-2d00cfceb356": {"events", ""}, // "name": null
		"fba98000-a4dd-11ec-9260-c7034f005b5e": {"events.fluent.Send_Webhook", "Send Webhook"},
		"3957d910-61dc-11eb-9de2-279c997416aa": {"events.fluent.GetLocationsForStateAndNetwork_Log", "GetLocationsForStateAndNetwork_Log"},
		"7dd711e3-53cd-11eb-86d1-7ddeda25003b": {"events.fluent.com.fluentretail.rubix.exceptions.PropertyNotFoundException", "com.fluentretail.rubix.exceptions.PropertyNotFoundException"},
		"ev-000000":                            {"events", ""}, // OneWelcome: no name
	}
	topics := map[string]bool{"events.dlq": true}
	for _, w := range want {
		topics[w.topic] = true
	}
	var seed []string
	for tp := range topics {
		seed = append(seed, tp)
	}
	c := kafkatest.Start(t, 1, 1, seed...)
	k, _ := newTestKafka(t, c.Addrs, func(cfg *KafkaConfig) { cfg.Topic = "events.{source}.{name}"; cfg.FallbackTopic = "events" })
	b := Batch{Events: append(decodeFixture(t, "fluent_seed.jsonl", envelope.FormatFluent), testEvents(1, 1, 0)...)}
	if err := k.Deliver(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for tp := range topics {
		for _, r := range kafkatest.Kcat(t, c.Addrs, tp) {
			seen++
			id := r.Headers[HeaderEventID]
			w, ok := want[id]
			if !ok || r.Topic != w.topic {
				t.Errorf("event %q in topic %s, want %q", id, r.Topic, w.topic)
			}
			name, has := r.Headers[headerName]
			if has != (w.name != "") || name != w.name {
				t.Errorf("event %s: %s header %q (present %v), want %q", id, headerName, name, has, w.name)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("kcat read %d records, want %d", seen, len(want))
	}
}
