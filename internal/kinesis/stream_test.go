package kinesis

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

const (
	testRole       = "arn:aws:iam::111122223333:role/onewelcome-stream"
	testExternalID = "onewelcome-external-id"
	testStream     = "onewelcome-events"
)

// env is a full local stack: kinesis-local and dynalite behind
// SigV4-verifying proxies, an STS server requiring an external ID, and a
// kfake cluster; the worker's credentials come from assumerole.
type env struct {
	kc    *kinesis.Client
	dc    *dynamodb.Client
	kafka *kafkatest.Cluster
	sink  *sink.Kafka
}

func newEnv(t *testing.T, shards int32) *env {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBASE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "base-secret")
	sts := awstest.NewSTS(t, testRole, testExternalID, awstest.Issued{AccessKeyID: "AKIDBASE", Secret: "base-secret"})
	kin, ddb := awstest.StartKinesis(t), awstest.StartDynamoDB(t)
	kinProxy, ddbProxy := awstest.NewSigningProxy(t, kin.URL, sts), awstest.NewSigningProxy(t, ddb.URL, sts)
	ac := assumerole.Config{Region: "us-east-1", Endpoints: assumerole.Endpoints{STS: sts.URL, Kinesis: kinProxy.URL, DynamoDB: ddbProxy.URL}}
	cfg, _, err := assumerole.Load(context.Background(), ac, assumerole.Role{RoleARN: testRole, ExternalID: testExternalID})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		kc: kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(ac.EndpointFor(assumerole.ServiceKinesis)) }),
		dc: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ac.EndpointFor(assumerole.ServiceDynamoDB)) }),
	}
	t.Cleanup(func() {
		if r := kinProxy.Rejected(); len(r) > 0 {
			t.Errorf("kinesis requests with bad signatures: %v", r[:min(3, len(r))])
		}
	})
	ctx := context.Background()
	if _, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(testStream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		out, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	e.kafka = kafkatest.Start(t, 1, 6, "events.onewelcome", "events.dlq")
	e.sink, err = sink.NewKafka(sink.KafkaConfig{Brokers: e.kafka.Addrs, RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: time.Second}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sink.Close() })
	return e
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

func (e *env) worker(t *testing.T, id string, mod func(*Config)) (*Stream, func()) {
	t.Helper()
	cfg := Config{Stream: testStream, Application: "relay-test", WorkerID: id, ShardSyncInterval: 300 * time.Millisecond,
		FailoverTime: 3 * time.Second, IdleBetweenReads: 100 * time.Millisecond, DrainTimeout: 20 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, Clients{Kinesis: e.kc, DynamoDB: e.dc, Region: "us-east-1"}, e.sink, zerolog.Nop(), nil)
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

func checkpoints(t *testing.T, e *env) map[string]string {
	t.Helper()
	out, err := e.dc.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("relay-test"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	cps := map[string]string{}
	for _, item := range out.Items {
		shard := item["ShardID"].(*ddbtypes.AttributeValueMemberS).Value
		if cp, ok := item["Checkpoint"].(*ddbtypes.AttributeValueMemberS); ok {
			cps[shard] = cp.Value
		}
	}
	return cps
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	waitFor(t, 20*time.Second, func() bool {
		cps := checkpoints(t, e)
		for sh, seq := range p.lastSeq {
			if cps[sh] != seq {
				return false
			}
		}
		return true
	})
	stop()
	if cps := checkpoints(t, e); len(cps) != 4 {
		t.Errorf("checkpoints = %v, want 4 shards", cps)
	}
}
