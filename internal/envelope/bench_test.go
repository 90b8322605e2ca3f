package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// benchRecord builds a Kinesis record of n OneWelcome events of about
// eventSize bytes each, the shape the real-time path decodes.
func benchRecord(n, eventSize int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		md := fmt.Sprintf(`{"metadata":{"agent":"d725e807-de02-4f70-a271-040e15b62eee","aggregateId":"0b7897ac-3c8f-4067-b23b-%012d",`+
			`"category":"public","eventId":"3b307680-2f7f-4186-8495-%012d","hostIp":"127.0.0.1","metadataVersion":"1.0",`+
			`"occurredTime":"2022-07-13T18:59:43.596191+02:00","payloadVersion":"1.0","producerId":"test-app",`+
			`"producerInstanceId":"test-app","producerVersion":"d921970","tenantId":"50a7dbf5-ce45-4f57-ab9a-554c23510a01",`+
			`"tags":["EXPORTABLE"],"traceId":"84e85059-0416-4e4b-85f9-eba03100c7de","type":"UserSignedInEvent"},`, i%97, i)
		b.WriteString(md)
		pad := max(eventSize-len(md)-60, 0)
		b.WriteString(`"payload":{"identityProviderId":"idp-1","destination":"` + strings.Repeat("x", pad) + `"}}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

const benchEvents = 10

// reportPerEvent adds events/s and allocs/event to a benchmark's output.
func reportPerEvent(b *testing.B, before *runtime.MemStats) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	events := float64(b.N * benchEvents)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
}

// BenchmarkOneWelcomeEnvelope measures the real-time hot path: one record
// of ten ~1 KiB events into normalized events.
func BenchmarkOneWelcomeEnvelope(b *testing.B) {
	data := benchRecord(benchEvents, 1024)
	d, _ := NewDecoder(Options{Format: FormatOneWelcome})
	var res Result
	pos := Position{Shard: "shardId-000000000000", Sequence: "49590338271490256608559692538361571095921575989136588898"}
	b.SetBytes(int64(len(data)))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for b.Loop() {
		res.Reset()
		d.Decode(&res, data, pos)
		if len(res.Events) != benchEvents {
			b.Fatalf("decoded %d events: %v", len(res.Events), res.Errors)
		}
	}
	reportPerEvent(b, &ms)
}

// BenchmarkOneWelcomeEncodingJSON is the baseline: the same record decoded
// by encoding/json into maps, with the same fields picked out.
func BenchmarkOneWelcomeEncodingJSON(b *testing.B) {
	data := benchRecord(benchEvents, 1024)
	b.SetBytes(int64(len(data)))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for b.Loop() {
		var env map[string]any
		if err := json.Unmarshal(data, &env); err != nil {
			b.Fatal(err)
		}
		events := env["events"].([]any)
		for _, e := range events {
			md := e.(map[string]any)["metadata"].(map[string]any)
			if md["eventId"] == nil || md["aggregateId"] == nil {
				b.Fatal("missing fields")
			}
		}
		if len(events) != benchEvents {
			b.Fatal("wrong count")
		}
	}
	reportPerEvent(b, &ms)
}

// BenchmarkFirehoseObject measures replay decoding: framing a Firehose
// object of concatenated envelopes and decoding every event.
func BenchmarkFirehoseObject(b *testing.B) {
	rec := benchRecord(benchEvents, 1024)
	var obj bytes.Buffer
	for i := range 100 {
		obj.Write(rec)
		if i%2 == 0 {
			obj.WriteByte('\n')
		}
	}
	data := obj.Bytes()
	d, _ := NewDecoder(Options{Format: FormatOneWelcome})
	b.SetBytes(int64(len(data)))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := d.DecodeObject(bytes.NewReader(data), "bench", 0, func(r *Result) error {
			n += len(r.Events)
			return nil
		})
		if err != nil || n != 100*benchEvents {
			b.Fatalf("decoded %d events: %v", n, err)
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	events := float64(b.N * 100 * benchEvents)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(after.Mallocs-ms.Mallocs)/events, "allocs/event")
}
