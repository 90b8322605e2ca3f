package kinesis

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

const testStream = "onewelcome-events"

// env is a full local stack: kinesis-local and dynalite behind
// SigV4-verifying proxies, an STS server requiring an external ID, and a
// kfake cluster; the worker's credentials come from assumerole.
type env struct {
	st    *awstest.Stack
	kc    *kinesis.Client
	dc    *dynamodb.Client
	kafka *kafkatest.Cluster
	sink  *sink.Kafka
}

func newEnv(t testing.TB, shards int32) *env { return newEnvWith(t, shards, nil) }

// newEnvWith is newEnv with setup run on the stack before the clients are
// built (to put a FanOut in front of Kinesis, say).
func newEnvWith(t testing.TB, shards int32, setup func(*awstest.Stack)) *env {
	t.Helper()
	st := awstest.StartStack(t)
	if setup != nil {
		setup(st)
	}
	ac := assumerole.Config{Region: "us-east-1", Endpoints: assumerole.Endpoints{STS: st.STS.URL, Kinesis: st.KinesisURL, DynamoDB: st.DynamoDBURL}}
	cfg, _, err := assumerole.Load(context.Background(), ac, assumerole.Role{RoleARN: st.Role, ExternalID: secret.String(st.ExternalID)})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		st: st,
		kc: kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(st.KinesisURL) }),
		dc: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(st.DynamoDBURL) }),
	}
	ctx := context.Background()
	if _, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	e.waitActive(t)
	e.kafka = kafkatest.Start(t, 1, 6, "events.onewelcome", "events.dlq")
	e.sink, err = sink.NewKafka(sink.KafkaConfig{Brokers: e.kafka.Addrs, RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: time.Second}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sink.Close() })
	return e
}

// waitActive waits until the stream is ACTIVE (after creation or resharding).
func (e *env) waitActive(t testing.TB) {
	t.Helper()
	testwait.Until(t, 30*time.Second, "every event in Kafka", func() bool {
		out, err := e.kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
}

// producer writes OneWelcome envelopes: every record carries perRecord
// events of one aggregate (the partition key), each with its per-aggregate
// sequence number.
type producer struct {
	mu      sync.Mutex
	seq     map[string]int
	next    int
	lastSeq map[string]string // shard -> last sequence number written
	ids     []string
}

func newProducer() *producer { return &producer{seq: map[string]int{}, lastSeq: map[string]string{}} }

func (p *producer) put(t *testing.T, kc *kinesis.Client, records, perRecord, keys int) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	flush := func() {
		if len(entries) == 0 {
			return
		}
		out, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(testStream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v (failed %d)", err, aws.ToInt32(out.FailedRecordCount))
		}
		for _, r := range out.Records {
			sh := aws.ToString(r.ShardId)
			if cur := p.lastSeq[sh]; len(aws.ToString(r.SequenceNumber)) > len(cur) || aws.ToString(r.SequenceNumber) > cur {
				p.lastSeq[sh] = aws.ToString(r.SequenceNumber)
			}
		}
		entries = entries[:0]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for range records {
		agg := fmt.Sprintf("agg-%03d", p.next%keys)
		var evs []string
		for range perRecord {
			p.seq[agg]++
			id := fmt.Sprintf("ev-%07d", len(p.ids))
			p.ids = append(p.ids, id)
			evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"%s","tenantId":"t1","occurredTime":"2024-02-01T09:00:00.000001+01:00"},"payload":{"seq":%d}}`, id, agg, p.seq[agg]))
		}
		p.next++
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), PartitionKey: aws.String(agg)})
		if len(entries) == 500 {
			flush()
		}
	}
	flush()
}

func (e *env) worker(t testing.TB, id string, mod func(*Config)) (*Stream, func()) {
	t.Helper()
	cfg := Config{Stream: testStream, Application: "relay-test", WorkerID: id, ShardSyncInterval: 300 * time.Millisecond,
		FailoverTime: 3 * time.Second, IdleBetweenReads: 100 * time.Millisecond, DrainTimeout: 20 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, Clients{Kinesis: e.kc, DynamoDB: e.dc, Region: "us-east-1"}, e.sink, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker %s: %v", id, err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("worker %s did not stop", id)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// kafkaCounts reads every event message back and checks per-key order.
func kafkaCounts(t *testing.T, e *env, want int) map[string]int {
	t.Helper()
	recs := kafkatest.Consume(t, e.kafka.Addrs, "events.onewelcome", want, 90*time.Second)
	counts := map[string]int{}
	last := map[string]int{}
	for _, r := range recs {
		var v struct{ Payload struct{ Seq int } }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		k := string(r.Key)
		if v.Payload.Seq <= last[k] && counts[r.Headers["event-id"]] == 0 {
			t.Errorf("key %s: seq %d after %d in partition order", k, v.Payload.Seq, last[k])
		}
		last[k] = max(last[k], v.Payload.Seq)
		counts[r.Headers["event-id"]]++
	}
	return counts
}

// requireDelivered fails when an id is missing from counts and returns the
// number of duplicates.
func requireDelivered(t testing.TB, ids []string, counts map[string]int, when string) (dups int) {
	t.Helper()
	for _, id := range ids {
		if counts[id] == 0 {
			t.Fatalf("event %s lost %s", id, when)
		}
		dups += counts[id] - 1
	}
	return dups
}

func checkpoints(t *testing.T, e *env) map[string]string { return leaseColumn(t, e, "Checkpoint") }

// waitCheckpointed waits until every shard p wrote to is checkpointed at
// the last sequence number p wrote there.
func waitCheckpointed(t *testing.T, e *env, p *producer) {
	t.Helper()
	testwait.Until(t, 20*time.Second, "the checkpoints at the last records written", func() bool {
		cps := checkpoints(t, e)
		for sh, seq := range p.lastSeq {
			if cps[sh] != seq {
				return false
			}
		}
		return true
	})
}

// leaseColumn reads attr of every row of the lease table that has it, by
// shard id (the balancer's heartbeat rows have no lease attributes).
func leaseColumn(t *testing.T, e *env, attr string) map[string]string {
	t.Helper()
	out, err := e.dc.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("relay-test"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]string{}
	for _, item := range out.Items {
		if v, ok := item[attr].(*ddbtypes.AttributeValueMemberS); ok {
			col[item["ShardID"].(*ddbtypes.AttributeValueMemberS).Value] = v.Value
		}
	}
	return col
}

// TestStreamExactlyOnceInCleanRun: a 4-shard stream of 20,000 events in
// envelopes of 10 arrives in Kafka once each, in per-key order, and the
// lease table's checkpoints are the shards' last sequence numbers.
func TestStreamExactlyOnceInCleanRun(t *testing.T) {
	e := newEnv(t, 4)
	p := newProducer()
	p.put(t, e.kc, 2000, 10, 200)
	_, stop := e.worker(t, "w1", nil)
	counts := kafkaCounts(t, e, len(p.ids))
	for _, id := range p.ids {
		if counts[id] != 1 {
			t.Fatalf("event %s reached Kafka %d times, want exactly once", id, counts[id])
		}
	}
	waitCheckpointed(t, e, p)
	stop()
	if cps := checkpoints(t, e); len(cps) != 4 {
		t.Errorf("checkpoints = %v, want 4 shards", cps)
	}
}

// TestStreamRestartFromCheckpoint stops the worker part-way (a graceful
// stop), writes more, and starts a new worker: nothing is lost and
// duplicates are limited to what was not acknowledged and checkpointed.
func TestStreamRestartFromCheckpoint(t *testing.T) {
	e := newEnv(t, 2)
	p := newProducer()
	p.put(t, e.kc, 600, 5, 50)
	_, stop := e.worker(t, "w1", func(c *Config) { c.MaxRecords = 50 })
	testwait.Until(t, 60*time.Second, "every event in Kafka", func() bool {
		return len(kafkatest.Consume(t, e.kafka.Addrs, "events.onewelcome", 1000, 2*time.Second)) >= 1000
	})
	stop()
	p.put(t, e.kc, 400, 5, 50)
	_, stop2 := e.worker(t, "w2", func(c *Config) { c.MaxRecords = 50 })
	counts := kafkaCounts(t, e, len(p.ids))
	stop2()
	dups := requireDelivered(t, p.ids, counts, "across the restart")
	// A graceful stop checkpoints every delivered batch, so nothing is re-read.
	t.Logf("restart: %d events, %d duplicates", len(p.ids), dups)
	if dups != 0 {
		t.Errorf("%d duplicates after a graceful stop, want 0", dups)
	}
}

// TestStreamTwoWorkersSplitAndHandOver: two workers on one lease table
// split 4 shards; stopping one hands its shards to the other.
func TestStreamTwoWorkersSplitAndHandOver(t *testing.T) {
	e := newEnv(t, 4)
	p := newProducer()
	p.put(t, e.kc, 200, 5, 40)
	a, stopA := e.worker(t, "worker-a", func(c *Config) { c.MaxLeasesForWorker = 2 })
	b, stopB := e.worker(t, "worker-b", nil)
	testwait.Until(t, 60*time.Second, "both workers to hold leases", func() bool { return a.LeasesHeld() >= 1 && b.LeasesHeld() >= 1 && a.LeasesHeld()+b.LeasesHeld() == 4 })
	t.Logf("split: worker-a %d leases, worker-b %d leases", a.LeasesHeld(), b.LeasesHeld())
	stopA()
	handover := time.Now()
	testwait.Until(t, 30*time.Second, "worker b to take all 4 leases", func() bool { return b.LeasesHeld() == 4 })
	t.Logf("worker-b holds all 4 shards %v after worker-a stopped", time.Since(handover).Round(100*time.Millisecond))
	p.put(t, e.kc, 200, 5, 40)
	counts := kafkaCounts(t, e, len(p.ids))
	stopB()
	requireDelivered(t, p.ids, counts, "in the handover")
}

// TestStreamResharding splits a shard mid-run: the parent is finished
// (SHARD_END) before its children are read, so per-key order holds
// across the split (kafkaCounts checks it).
func TestStreamResharding(t *testing.T) {
	e := newEnv(t, 2)
	p := newProducer()
	p.put(t, e.kc, 300, 5, 30)
	_, stop := e.worker(t, "w1", nil)
	parent := e.splitFirstShard(t)
	p.put(t, e.kc, 300, 5, 30)
	counts := kafkaCounts(t, e, len(p.ids))
	requireDelivered(t, p.ids, counts, "across the split")
	testwait.Until(t, 30*time.Second, "the parent shard to reach SHARD_END", func() bool { return checkpoints(t, e)[aws.ToString(parent.ShardId)] == "SHARD_END" })
	stop()
}

// TestStreamPoisonRecords: records that are not JSON or not an envelope go
// to the DLQ with their shard and sequence number, and the shard moves on.
func TestStreamPoisonRecords(t *testing.T) {
	e := newEnv(t, 1)
	p := newProducer()
	p.put(t, e.kc, 10, 3, 5)
	poison := map[string]string{"not json at all": "syntax", `{"events":"not an array"}`: "not_array", `{"hello":"world"}`: "missing_field"}
	seqs := map[string]string{}
	for data := range poison {
		out, err := e.kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(testStream), Data: []byte(data), PartitionKey: aws.String("poison")})
		if err != nil {
			t.Fatal(err)
		}
		seqs[data] = aws.ToString(out.ShardId) + "/" + aws.ToString(out.SequenceNumber) + "#0"
	}
	p.put(t, e.kc, 10, 3, 5)
	_, stop := e.worker(t, "w1", nil)
	counts := kafkaCounts(t, e, len(p.ids))
	if len(counts) != len(p.ids) {
		t.Fatalf("%d distinct events in Kafka, want %d", len(counts), len(p.ids))
	}
	dlq := kafkatest.Consume(t, e.kafka.Addrs, "events.dlq", len(poison), 30*time.Second)
	stop()
	if len(dlq) != len(poison) {
		t.Fatalf("dlq has %d records, want %d", len(dlq), len(poison))
	}
	for _, r := range dlq {
		data := string(r.Value)
		if r.Headers["dlq-kind"] != poison[data] || r.Headers["source-position"] != seqs[data] {
			t.Errorf("dead letter %q: kind %q position %q, want %q at %q", data, r.Headers["dlq-kind"], r.Headers["source-position"], poison[data], seqs[data])
		}
	}
}

// splitFirstShard splits the stream's first shard at the middle of its
// hash key range, waits for the stream to be active again and returns the
// parent.
func (e *env) splitFirstShard(t testing.TB) types.Shard {
	t.Helper()
	ctx := context.Background()
	desc, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	parent := desc.Shards[0]
	start, end := parseBig(aws.ToString(parent.HashKeyRange.StartingHashKey)), parseBig(aws.ToString(parent.HashKeyRange.EndingHashKey))
	mid := start.Add(start, end)
	mid.Rsh(mid, 1)
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(testStream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	e.waitActive(t)
	return parent
}

func parseBig(s string) *big.Int {
	n, _ := new(big.Int).SetString(s, 10)
	return n
}

// TestStreamMerge merges two shards mid-run: the child has two parents
// (KCL itself only knows the first) and is read after both finished.
func TestStreamMerge(t *testing.T) {
	e := newEnv(t, 2)
	p := newProducer()
	p.put(t, e.kc, 300, 5, 30)
	_, stop := e.worker(t, "w1", nil)
	ctx := context.Background()
	desc, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(testStream),
		ShardToMerge: desc.Shards[0].ShardId, AdjacentShardToMerge: desc.Shards[1].ShardId}); err != nil {
		t.Fatal(err)
	}
	e.waitActive(t)
	p.put(t, e.kc, 300, 5, 30)
	counts := kafkaCounts(t, e, len(p.ids))
	requireDelivered(t, p.ids, counts, "across the merge")
	stop()
}

// testLogger logs to the test at EVENTRELAY_TEST_LOG level (default: off).
func testLogger(t testing.TB) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(os.Getenv("EVENTRELAY_TEST_LOG"))
	if err != nil || os.Getenv("EVENTRELAY_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(lvl)
}
