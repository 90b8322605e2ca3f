package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testEvents makes n OneWelcome events spread over keys aggregates, each
// carrying its per-key sequence number so order can be checked.
func testEvents(n, keys, pad int) []envelope.Event {
	evs := make([]envelope.Event, n)
	seq := map[int]int{}
	base := time.Date(2024, 2, 1, 9, 0, 0, 0, time.UTC)
	for i := range evs {
		k := i % keys
		seq[k]++
		raw := fmt.Sprintf(`{"metadata":{"eventId":"ev-%06d","type":"UserSignedInEvent","aggregateId":"agg-%03d","tenantId":"t%d","category":"public","occurredTime":"%s"},"payload":{"seq":%d,"pad":"%s"}}`,
			i, k, k%3, base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), seq[k], strings.Repeat("x", pad))
		evs[i] = envelope.Event{
			ID: fmt.Sprintf("ev-%06d", i), Type: "UserSignedInEvent", Source: envelope.FormatOneWelcome,
			Tenant: fmt.Sprintf("t%d", k%3), Key: fmt.Sprintf("agg-%03d", k), Category: "public",
			OccurredAt: base.Add(time.Duration(i) * time.Millisecond), Raw: []byte(raw),
			Pos: envelope.Position{Shard: "shardId-000000000001", Sequence: fmt.Sprint(1000 + i/10), Index: i % 10},
		}
	}
	return evs
}

func newTestKafka(t testing.TB, brokers []string, mod func(*KafkaConfig)) (*Kafka, *prometheus.Registry) {
	t.Helper()
	cfg := KafkaConfig{Brokers: brokers, Topic: "events.{source}", RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: 500 * time.Millisecond, WriteTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	reg := prometheus.NewRegistry()
	k, err := NewKafka(cfg, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, reg
}

// deliverAll sends events in batches from workers goroutines, each owning
// whole keys (as shards do), and returns the ids acknowledged.
func deliverAll(t *testing.T, s Sink, evs []envelope.Event, batch, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b Batch
			for i := 0; i < len(evs); {
				b.Reset()
				for ; i < len(evs) && len(b.Events) < batch; i++ {
					if keyIndex(evs[i].Key)%workers == w {
						b.Events = append(b.Events, evs[i])
					}
				}
				if len(b.Events) > 0 {
					if err := s.Deliver(context.Background(), &b); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func keyIndex(key string) int {
	var n int
	fmt.Sscanf(key, "agg-%d", &n)
	return n
}

// TestKafkaReadBackWithKcat is the contract test: 10,000 events over 6
// partitions, read back by kcat (librdkafka), checking value, key,
// headers, murmur2 partition and per-key order.
func TestKafkaReadBackWithKcat(t *testing.T) {
	c := kafkatest.Start(t, 3, 6, "events.onewelcome", "events.dlq")
	k, reg := newTestKafka(t, c.Addrs, nil)
	evs := testEvents(10000, 97, 200)
	deliverAll(t, k, evs, 500, 3)

	recs := kafkatest.Kcat(t, c.Addrs, "events.onewelcome")
	if len(recs) != len(evs) {
		t.Fatalf("kcat read %d records, want %d", len(recs), len(evs))
	}
	byID := map[string]*envelope.Event{}
	for i := range evs {
		byID[evs[i].ID] = &evs[i]
	}
	lastSeq := map[string]int{}
	partitions := map[int32]bool{}
	for _, r := range recs { // kcat prints each partition in offset order
		ev, ok := byID[r.Headers[HeaderEventID]]
		if !ok {
			t.Fatalf("%v: unknown event-id header %q", r, r.Headers[HeaderEventID])
		}
		delete(byID, ev.ID)
		if string(r.Value) != string(ev.Raw) || string(r.Key) != ev.Key {
			t.Fatalf("%v: value or key differs from the event", r)
		}
		want := map[string]string{HeaderEventType: ev.Type, HeaderSource: "onewelcome", HeaderTenant: ev.Tenant, HeaderCategory: "public",
			HeaderOccurredAt: ev.OccurredAt.Format(envelope.TimeLayout), HeaderPosition: ev.Pos.String()}
		for h, v := range want {
			if r.Headers[h] != v {
				t.Fatalf("%v: header %s = %q, want %q", r, h, r.Headers[h], v)
			}
		}
		if p := kafkatest.Murmur2Partition(r.Key, 6); p != r.Partition {
			t.Fatalf("%v: partition %d, the Java client would pick %d", r, r.Partition, p)
		}
		partitions[r.Partition] = true
		var v struct{ Payload struct{ Seq int } }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Payload.Seq != lastSeq[ev.Key]+1 {
			t.Fatalf("%v: key %s seq %d after %d: per-key order broken", r, ev.Key, v.Payload.Seq, lastSeq[ev.Key])
		}
		lastSeq[ev.Key] = v.Payload.Seq
	}
	if len(byID) != 0 || len(partitions) != 6 {
		t.Errorf("%d events missing, %d partitions used", len(byID), len(partitions))
	}
	if got := testutil.ToFloat64(k.m.messages.WithLabelValues("onewelcome")); got != 10000 {
		t.Errorf("messages metric = %v", got)
	}
	_ = reg
}

func TestKafkaDeadLetters(t *testing.T) {
	c := kafkatest.Start(t, 1, 2, "events.onewelcome", "events.dlq")
	k, _ := newTestKafka(t, c.Addrs, func(cfg *KafkaConfig) { cfg.MaxMessageBytes = 4096; cfg.BatchBytes = 1 << 20 })
	evs := testEvents(3, 3, 10)
	big := testEvents(1, 1, 8000)[0]
	big.ID = "big-one"
	b := Batch{Events: append(evs, big), Dead: []DeadLetter{{
		Format: envelope.FormatOneWelcome, Kind: "syntax", Reason: "syntax: invalid character", Raw: []byte("{\"events\":[oops\xff"),
		Pos: envelope.Position{Shard: "shardId-000000000002", Sequence: "777"},
	}, {
		// The decoder kept a prefix of a record over --max-event-size: the
		// header gives the record's real length, not the prefix's.
		Format: envelope.FormatOneWelcome, Kind: "too_large", Reason: "event is 5000000 bytes, over the limit of 100", Raw: []byte(strings.Repeat("p", 100)),
		Size: 5_000_000, Pos: envelope.Position{Shard: "shardId-000000000002", Sequence: "888"},
	}}}
	if err := k.Deliver(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if got := kafkatest.Consume(t, c.Addrs, "events.onewelcome", 3, 10*time.Second); len(got) != 3 {
		t.Fatalf("events topic has %d records, want 3", len(got))
	}
	dlq := kafkatest.Consume(t, c.Addrs, "events.dlq", 3, 10*time.Second)
	if len(dlq) != 3 {
		t.Fatalf("dlq has %d records, want 3", len(dlq))
	}
	for _, r := range dlq {
		switch {
		case r.Headers[HeaderDLQKind] == "syntax":
			if string(r.Value) != "{\"events\":[oops\xff" || r.Headers[HeaderPosition] != "shardId-000000000002/777#0" || r.Headers[HeaderDLQReason] == "" {
				t.Errorf("decode dead letter = %v value %q headers %v", r, r.Value, r.Headers)
			}
			if _, ok := r.Headers[HeaderDLQTruncated]; ok {
				t.Errorf("a whole dead letter has %s = %q", HeaderDLQTruncated, r.Headers[HeaderDLQTruncated])
			}
		case r.Headers[HeaderDLQKind] == "too_large" && r.Headers[HeaderPosition] == "shardId-000000000002/888#0":
			if string(r.Value) != strings.Repeat("p", 100) || r.Headers[HeaderDLQTruncated] != "5000000" {
				t.Errorf("decoder prefix dead letter: %s = %q (want 5000000), value %d bytes", HeaderDLQTruncated, r.Headers[HeaderDLQTruncated], len(r.Value))
			}
		case r.Headers[HeaderDLQKind] == "too_large":
			if r.Headers[HeaderEventID] != "big-one" || r.Headers[HeaderDLQTruncated] != fmt.Sprint(len(big.Raw)) || len(r.Value) >= len(big.Raw) {
				t.Errorf("oversize dead letter headers = %v, %d bytes", r.Headers, len(r.Value))
			}
		default:
			t.Errorf("unexpected dead letter %v %v", r, r.Headers)
		}
	}
	if got := testutil.ToFloat64(k.m.dead.WithLabelValues("onewelcome", "too_large")); got != 2 {
		t.Errorf("dlq metric too_large = %v", got)
	}
}

// TestKafkaBrokerOutage stops every broker mid-run and brings them back:
// Deliver blocks meanwhile (nothing is acknowledged while Kafka is down)
// and every acknowledged event is in Kafka afterwards.
func TestKafkaBrokerOutage(t *testing.T) {
	c := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.dlq")
	k, _ := newTestKafka(t, c.Addrs, nil)
	evs := testEvents(3000, 50, 100)

	var mu sync.Mutex
	var acked []string
	var ackTimes []time.Time
	done := make(chan error, 1)
	go func() {
		var b Batch
		for i := 0; i < len(evs); i += 100 {
			b.Reset()
			b.Events = append(b.Events, evs[i:i+100]...)
			if err := k.Deliver(context.Background(), &b); err != nil {
				done <- err
				return
			}
			mu.Lock()
			for _, e := range b.Events {
				acked = append(acked, e.ID)
			}
			ackTimes = append(ackTimes, time.Now())
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	testwait.Until(t, 30*time.Second, "500 acknowledgements", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 500 })
	c.Stop()
	stopped := time.Now()
	var memBefore runtime.MemStats
	runtime.ReadMemStats(&memBefore)
	time.Sleep(3 * time.Second)
	mu.Lock()
	for _, at := range ackTimes {
		if at.After(stopped.Add(500 * time.Millisecond)) {
			t.Errorf("a batch was acknowledged %v after the brokers stopped", at.Sub(stopped))
		}
	}
	mu.Unlock()
	c.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("delivery did not finish after the brokers came back")
	}
	if got := testutil.ToFloat64(k.m.retries); got == 0 {
		t.Error("no retries were counted during the outage")
	}
	recs := kafkatest.Consume(t, c.Addrs, "events.onewelcome", len(evs), 30*time.Second)
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Headers[HeaderEventID]]++
	}
	for _, id := range acked {
		if seen[id] == 0 {
			t.Fatalf("event %s was acknowledged but is not in Kafka", id)
		}
	}
	dups := len(recs) - len(seen)
	t.Logf("%d events acknowledged, %d records in Kafka, %d duplicates from retried batches", len(acked), len(recs), dups)
	if len(acked) != len(evs) {
		t.Errorf("acknowledged %d events, want %d", len(acked), len(evs))
	}
}

// TestKafkaPermanentRejection makes the broker reject one partition's
// produce requests as too large: those events are isolated, found to be
// rejected on their own, and dead-lettered; the rest are delivered.
func TestKafkaPermanentRejection(t *testing.T) {
	c := kafkatest.Start(t, 1, 2, "events.onewelcome", "events.dlq")
	k, _ := newTestKafka(t, c.Addrs, nil)
	evs := testEvents(20, 10, 10)
	bad := kafkatest.Murmur2Partition([]byte(evs[0].Key), 2)
	want := 0
	for _, e := range evs {
		if kafkatest.Murmur2Partition([]byte(e.Key), 2) == bad {
			want++
		}
	}
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "events.onewelcome", Partitions: []int32{bad}, Err: kerr.MessageTooLarge, Count: -1})
	b := Batch{Events: evs}
	if err := k.Deliver(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	h.Remove()
	if len(b.Dead) != want {
		t.Fatalf("%d dead letters, want %d", len(b.Dead), want)
	}
	dlq := kafkatest.Consume(t, c.Addrs, "events.dlq", want, 10*time.Second)
	if len(dlq) != want {
		t.Fatalf("dlq has %d records, want %d", len(dlq), want)
	}
	for _, r := range dlq {
		if r.Headers[HeaderDLQKind] != KindRejected || r.Headers[HeaderEventID] == "" || !strings.Contains(r.Headers[HeaderDLQReason], "Message Size Too Large") {
			t.Errorf("rejected dead letter headers %v", r.Headers)
		}
	}
	if got := kafkatest.Consume(t, c.Addrs, "events.onewelcome", len(evs)-want, 10*time.Second); len(got) != len(evs)-want {
		t.Errorf("events topic has %d records, want %d", len(got), len(evs)-want)
	}
}

// TestKafkaErrorClasses: a produce error Kafka marks retriable is retried
// until delivered; one it does not (here INVALID_REQUIRED_ACKS, a
// misconfiguration) stops Deliver with the error instead of being retried
// forever.
func TestKafkaErrorClasses(t *testing.T) {
	tests := []struct {
		name    string
		err     *kerr.Error
		count   int
		wantErr bool
	}{
		{"retriable, then delivered", kerr.NotEnoughReplicas, 3, false},
		{"not retriable surfaces", kerr.InvalidRequiredAcks, -1, true},
		{"unauthorised surfaces", kerr.TopicAuthorizationFailed, -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Start(t, 1, 2, "events.onewelcome", "events.dlq")
			k, _ := newTestKafka(t, c.Addrs, nil)
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "events.onewelcome", Err: tc.err, Count: tc.count})
			defer h.Remove()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			b := Batch{Events: testEvents(20, 10, 10)}
			err := k.Deliver(ctx, &b)
			switch {
			case tc.wantErr && (err == nil || errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, kafka.Error(tc.err.Code))):
				t.Fatalf("Deliver = %v, want the broker's %s at once", err, tc.err.Message)
			case !tc.wantErr && err != nil:
				t.Fatalf("Deliver = %v, want delivered after retries", err)
			}
		})
	}
}
