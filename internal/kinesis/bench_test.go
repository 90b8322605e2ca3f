package kinesis

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/twmb/franz-go/pkg/kgo"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchEvent is a ~1 KiB OneWelcome event carrying the time it was put.
func benchEvent(i int, put time.Time) string {
	return fmt.Sprintf(`{"metadata":{"eventId":"b-%08d","type":"UserSignedInEvent","category":"public","aggregateId":"agg-%d","tenantId":"t","occurredTime":"2024-02-01T00:00:00Z"},"payload":{"put":%d,"pad":"%s"}}`,
		i, i%101, put.UnixNano(), strings.Repeat("x", 850))
}

func putEnvelopes(b *testing.B, kc *kinesis.Client, first, events, perRecord int) {
	var entries []types.PutRecordsRequestEntry
	for i := first; i < first+events; i += perRecord {
		var evs []string
		now := time.Now()
		for j := i; j < min(i+perRecord, first+events); j++ {
			evs = append(evs, benchEvent(j, now))
		}
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), PartitionKey: aws.String(strconv.Itoa(i))})
		if len(entries) == 100 {
			if _, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries}); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	if len(entries) > 0 {
		if _, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries}); err != nil {
			b.Fatal(err)
		}
	}
}

// consumeAll reads events.onewelcome until n records arrived, calling fn
// with each record and the time it was received.
func consumeAll(b *testing.B, addrs []string, n int, timeout time.Duration, fn func(*kgo.Record, time.Time)) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("events.onewelcome"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("only %d of %d events reached Kafka within %s", got, n, timeout)
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if fn != nil {
				fn(r, now)
			}
		})
	}
}

// BenchmarkStreamDrain drains a pre-filled stream into Kafka: 8 shards
// with 1 and 2 workers, and 1, 2 and 4 shards with one worker. Reports
// events/s (EVENTRELAY_BENCH_EVENTS events of ~1 KiB, 10 per record).
func BenchmarkStreamDrain(b *testing.B) {
	events := envInt("EVENTRELAY_BENCH_EVENTS", 40000)
	for _, c := range []struct{ shards, workers int }{{1, 1}, {2, 1}, {4, 1}, {8, 1}, {8, 2}} {
		b.Run(fmt.Sprintf("shards=%d/workers=%d", c.shards, c.workers), func(b *testing.B) {
			for range b.N {
				e := newEnv(b, int32(c.shards))
				putEnvelopes(b, e.kc, 0, events, 10)
				start := time.Now()
				for w := range c.workers {
					e.worker(b, fmt.Sprintf("w%d", w), nil)
				}
				consumeAll(b, e.kafka.Addrs, events, 5*time.Minute, nil)
				el := time.Since(start).Seconds()
				b.ReportMetric(float64(events)/el, "events/s")
				b.ReportMetric(float64(events)/el/float64(c.shards), "events/s/shard")
			}
		})
	}
}

// BenchmarkStreamLatency puts 2,000 events/s (5 per record) on a 4-shard
// stream for EVENTRELAY_BENCH_SECONDS (default 15) with the default
// settings and reports put-to-Kafka latency percentiles.
func BenchmarkStreamLatency(b *testing.B) { streamLatency(b, false) }

// BenchmarkStreamLatencyEFO is BenchmarkStreamLatency reading with
// enhanced fan-out, through awstest.FanOut: its subscriptions read the
// emulator every 50 ms while caught up (FanOutOptions.PollInterval), which
// stands for Kinesis's push (AWS quotes ~70 ms propagation for enhanced
// fan-out).
func BenchmarkStreamLatencyEFO(b *testing.B) { streamLatency(b, true) }

func streamLatency(b *testing.B, fanOut bool) {
	seconds := envInt("EVENTRELAY_BENCH_SECONDS", 15)
	for range b.N {
		var e *env
		mod := func(c *Config) { c.IdleBetweenReads, c.FailoverTime = 0, 0 } // defaults, but a quick first lease
		if fanOut {
			e, _ = efoEnv(b, 4, awstest.FanOutOptions{})
			mod = efo(mod)
		} else {
			e = newEnv(b, 4)
		}
		s, _ := e.worker(b, "lat", mod)
		deadline := time.Now().Add(30 * time.Second)
		for s.LeasesHeld() < 4 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		total := 2000 * seconds
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(50 * time.Millisecond) // 100 events per tick
			defer tick.Stop()
			for sent := 0; sent < total; sent += 100 {
				<-tick.C
				putEnvelopes(b, e.kc, sent, 100, 5)
			}
		}()
		var lat []time.Duration
		consumeAll(b, e.kafka.Addrs, total, time.Duration(seconds+60)*time.Second, func(r *kgo.Record, at time.Time) {
			var v struct{ Payload struct{ Put int64 } }
			if json.Unmarshal(r.Value, &v) == nil {
				lat = append(lat, at.Sub(time.Unix(0, v.Payload.Put)))
			}
		})
		<-done
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50_ms")
		b.ReportMetric(q(0.99), "p99_ms")
		b.ReportMetric(q(1), "max_ms")
	}
}
