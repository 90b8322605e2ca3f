package replay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReplayRecycledChunksIntact: the read chunks the replay recycles are
// reused only once nothing holds their bytes. Objects of several chunks
// each (every event with its own random payload, every 97th line an event
// without its time)
// are replayed in small batches, many in flight and slowed, while the
// broker refuses every 5th of the 21st to 60th produce requests
// (NOT_ENOUGH_REPLICAS: the sink writes again), and
// every message read back by kcat carries exactly the bytes of its source
// event or dead letter, and its key and headers (built in scratch space the
// sink reuses on the same rule). Chunks were reused, and chunks alive during a
// failed write were not. The backfill's sink (the Kafka sink wrapped to
// record what was delivered) recycles on the same rule.
func TestReplayRecycledChunksIntact(t *testing.T) {
	t.Run("kafka", func(t *testing.T) { testRecycledChunks(t, func(s sink.Sink) sink.Sink { return s }) })
	t.Run("backfill recording", func(t *testing.T) {
		ov := NewOverlap(time.Hour)
		testRecycledChunks(t, ov.Recording)
		if !ov.Contains("rc-2-899-3") {
			t.Error("the recording wrapper did not observe the last event")
		}
	})
}

func testRecycledChunks(t *testing.T, wrap func(sink.Sink) sink.Sink) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	want := map[string]string{} // event id -> its raw JSON
	wantKey, wantTime := map[string]string{}, map[string]string{}
	var bad []string
	for o := range 3 {
		var b strings.Builder
		for l := range 900 {
			if l%97 == 50 {
				// An event without its time: a dead letter whose raw
				// bytes are the event's, sliced from the chunk.
				ev := fmt.Sprintf(`{"metadata":{"eventId":"broken-%d-%d","type":"UserSignedInEvent","tenantId":"t1"},"payload":{"note":"%s"}}`, o, l, randText(rng, 300))
				bad = append(bad, ev)
				b.WriteString(`{"events":[` + ev + "]}\n")
				continue
			}
			b.WriteString(`{"events":[`)
			for e := range 4 {
				id := fmt.Sprintf("rc-%d-%03d-%d", o, l, e)
				agg := fmt.Sprintf("agg-%d", rng.IntN(50))
				raw := fmt.Sprintf(`{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"%s","tenantId":"t1","occurredTime":"2024-02-01T09:%02d:00Z"},"payload":{"note":"%s"}}`,
					id, agg, l%60, randText(rng, 200+rng.IntN(600)))
				want[id] = raw
				wantKey[id] = agg
				wantTime[id] = fmt.Sprintf("2024-02-01T09:%02d:00Z", l%60)
				if e > 0 {
					b.WriteByte(',')
				}
				b.WriteString(raw)
			}
			b.WriteString("]}\n")
		}
		x.objects[fmt.Sprintf("public/2024/02/01/09/export-%d.gz", o)] = gz([]byte(b.String()))
	}
	c := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.dlq")
	var produces atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n := produces.Add(1); n <= 20 || n > 60 || n%5 != 0 {
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		res := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			res.Topics = append(res.Topics, st)
		}
		return res, nil, true
	})
	k, err := sink.NewKafka(sink.KafkaConfig{Brokers: c.Addrs, RetryBackoffMin: 10 * time.Millisecond}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	store := DirStore{Root: writeDir(t, x)}
	ctx := context.Background()
	_, objs, err := Plan(ctx, store, "public/", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := LoadState(filepath.Join(t.TempDir(), "s.json"), []string{"x"}, Window{}, false)
	// Deliveries are slowed, so that batches wait in flight while the
	// reader moves on into new chunks: a chunk reused too early would be
	// overwritten before its batch is written.
	r := NewRunner(Options{Concurrency: 2, BatchSize: 40, InFlight: 16}, wrap(slowSink{k, new(atomic.Int64)}), state, zerolog.Nop())
	if r.chunks == nil {
		t.Fatal("the Kafka sink reports write failures, yet the runner recycles no chunks")
	}
	r.chunks.Poison = true // a chunk released too early shows at once
	if _, err := r.Run(ctx, []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}}); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Kcat(t, c.Addrs, "events.onewelcome")
	seen := map[string]bool{}
	for _, rec := range recs {
		id := rec.Headers[sink.HeaderEventID]
		if w, ok := want[id]; !ok || string(rec.Value) != w {
			t.Fatalf("message %s at %d/%d: %d bytes that are not its source event's %d (%.80q...)", id, rec.Partition, rec.Offset, len(rec.Value), len(w), rec.Value)
		}
		// Keys and headers are built in scratch space the sink reuses.
		if string(rec.Key) != wantKey[id] || rec.Headers[sink.HeaderOccurredAt] != wantTime[id] || rec.Headers[sink.HeaderTenant] != "t1" {
			t.Fatalf("message %s: key %q, occurred-at %q, tenant %q; want %q, %q, t1", id, rec.Key, rec.Headers[sink.HeaderOccurredAt], rec.Headers[sink.HeaderTenant], wantKey[id], wantTime[id])
		}
		seen[id] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%d of %d events read back", len(seen), len(want))
	}
	dlq := map[string]bool{}
	for _, rec := range kafkatest.Kcat(t, c.Addrs, "events.dlq") {
		dlq[string(rec.Value)] = true
	}
	for _, line := range bad {
		if !dlq[line] {
			t.Fatalf("dead letter %.60q... not in the DLQ byte for byte", line)
		}
	}
	reused, dropped := r.chunks.Stats()
	t.Logf("%d produce requests (every 5th of the 21st to 60th refused); chunks reused %d, left to the GC after a failed write %d", produces.Load(), reused, dropped)
	if reused == 0 {
		t.Error("no chunk was reused: the test proves nothing about recycling")
	}
	if dropped == 0 {
		t.Error("no chunk was withheld after the failed writes")
	}
}

// randText is n random letters and digits.
func randText(rng *rand.Rand, n int) string {
	const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b bytes.Buffer
	for range n {
		b.WriteByte(abc[rng.IntN(len(abc))])
	}
	return b.String()
}

// slowSink delays each delivery by 0 to 15 ms, so that later batches are
// often written after earlier ones were acknowledged (and keeps the Kafka
// sink's WriteFailures).
type slowSink struct {
	*sink.Kafka
	n *atomic.Int64
}

func (s slowSink) Deliver(ctx context.Context, b *sink.Batch) error {
	time.Sleep(time.Duration(s.n.Add(7)%16) * time.Millisecond)
	return s.Kafka.Deliver(ctx, b)
}
