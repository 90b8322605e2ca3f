package kinesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/rs/zerolog"
)

// Enhanced fan-out runs end to end against awstest.FanOut: kinesis-local
// behind a SubscribeToShard endpoint speaking Kinesis's event-stream
// protocol (kinesis-local's own lacks the initial-response event
// aws-sdk-go-v2 requires), with subscriptions compressed from 5 minutes to
// seconds so the worker resubscribes during the tests. This checks the
// wiring.
func TestEnhancedFanOutWiring(t *testing.T) {
	s := &Stream{cfg: Config{Stream: "s", EnhancedFanOut: true, ConsumerName: "relay-efo"}.withDefaults(), clients: Clients{Region: "eu-west-1"}, log: zerolog.Nop(), m: newMetrics(nil)}
	k := s.kclConfig()
	if !k.EnableEnhancedFanOutConsumer || k.EnhancedFanOutConsumerName != "relay-efo" {
		t.Errorf("enhanced fan-out not enabled: %+v", k)
	}
	s.consumerARN = "arn:aws:kinesis:eu-west-1:1:stream/s/consumer/relay-efo:1"
	if k := s.kclConfig(); k.EnhancedFanOutConsumerARN != s.consumerARN {
		t.Errorf("the registered consumer's ARN is not handed to the KCL: %q", k.EnhancedFanOutConsumerARN)
	}
	s.cfg.EnhancedFanOut = false
	if s.kclConfig().EnableEnhancedFanOutConsumer {
		t.Error("polling config enabled fan-out")
	}
}

// efoEnv is newEnv with a FanOut in front of Kinesis.
func efoEnv(t testing.TB, shards int32, o awstest.FanOutOptions) (*env, *awstest.FanOut) {
	t.Helper()
	var f *awstest.FanOut
	e := newEnvWith(t, shards, func(st *awstest.Stack) { f = st.StartFanOut(t, o) })
	return e, f
}

// efo configures a worker for enhanced fan-out, then applies mod.
func efo(mod func(*Config)) func(*Config) {
	return func(c *Config) {
		c.EnhancedFanOut, c.ConsumerName = true, "relay-efo"
		if mod != nil {
			mod(c)
		}
	}
}

// subscriptionsByShard groups the FanOut's subscriptions by shard.
func subscriptionsByShard(f *awstest.FanOut) map[string][]awstest.Subscription {
	out := map[string][]awstest.Subscription{}
	for _, s := range f.Subscriptions() {
		out[s.ShardID] = append(out[s.ShardID], s)
	}
	return out
}

// requireContinuations checks that a subscription that expired was renewed
// from its last ContinuationSequenceNumber, and returns how many expired.
func requireContinuations(t *testing.T, subs []awstest.Subscription) (expired int) {
	t.Helper()
	for i, s := range subs[:len(subs)-1] {
		if s.End != awstest.EndExpired {
			continue
		}
		expired++
		if want := "AFTER_SEQUENCE_NUMBER " + s.Continuation; subs[i+1].StartingPosition != want {
			t.Errorf("shard %s: subscription %d expired at continuation %s; the next started at %s", s.ShardID, i, s.Continuation, subs[i+1].StartingPosition)
		}
	}
	return expired
}

func leaseOwners(t *testing.T, e *env) map[string]string { return leaseColumn(t, e, "AssignedTo") }

// TestEFODeliveryAcrossResubscriptions: with enhanced fan-out and
// subscriptions that last 1.5 s, events written before and during the run
// reach Kafka exactly once and in per-key order; every expired
// subscription is renewed from its continuation; the checkpoints end at
// the shards' last records.
func TestEFODeliveryAcrossResubscriptions(t *testing.T) {
	e, f := efoEnv(t, 2, awstest.FanOutOptions{SubscriptionDuration: 1500 * time.Millisecond, Heartbeat: 500 * time.Millisecond})
	p := newProducer()
	p.put(t, e.kc, 200, 5, 40)
	s, stop := e.worker(t, "w1", efo(nil))
	// Write on until every shard's subscription expired twice.
	expired := func() bool {
		byShard := subscriptionsByShard(f)
		for _, subs := range byShard {
			n := 0
			for _, sub := range subs {
				if sub.End == awstest.EndExpired {
					n++
				}
			}
			if n < 2 {
				return false
			}
		}
		return len(byShard) == 2
	}
	for deadline := time.Now().Add(20 * time.Second); !expired(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions did not expire twice per shard within 20 s: %+v", f.Subscriptions())
		}
		p.put(t, e.kc, 30, 5, 40)
	}
	counts := kafkaCounts(t, e, len(p.ids))
	if dups := requireDelivered(t, p.ids, counts, "across resubscriptions"); dups != 0 {
		t.Errorf("%d duplicates in a clean run across resubscriptions, want 0", dups)
	}
	waitCheckpointed(t, e, p)
	stop()
	byShard := subscriptionsByShard(f)
	if len(byShard) != 2 {
		t.Fatalf("subscriptions to %d shards, want 2", len(byShard))
	}
	for shard, subs := range byShard {
		if n := requireContinuations(t, subs); n < 2 {
			t.Errorf("shard %s: %d subscriptions expired, want at least 2 (the test must cross expiries)", shard, n)
		}
		for _, sub := range subs {
			if sub.ConsumerARN != s.ConsumerARN() {
				t.Errorf("subscription with consumer %s, want %s", sub.ConsumerARN, s.ConsumerARN())
			}
		}
	}
}

// TestEFOCheckpointOnlyAfterKafkaAck stops Kafka under an enhanced fan-out
// worker while a second replica runs: for twice failover_time no checkpoint
// moves and the first worker keeps its leases, though the KCL renews them
// only between events and the processor blocks on Kafka (keepLease); once
// Kafka is back everything arrives and the checkpoints reach the end.
func TestEFOCheckpointOnlyAfterKafkaAck(t *testing.T) {
	// With balancing on, w2 joining asks w1 to give up one of its two
	// shards while Kafka is down: no checkpoint moves, nothing is lost, and
	// the spread ends one each. With it off, w1 keeps both.
	for _, balance := range []bool{false, true} {
		t.Run(fmt.Sprintf("balance_leases=%v", balance), func(t *testing.T) { efoKafkaOutage(t, balance) })
	}
}

func efoKafkaOutage(t *testing.T, balance bool) {
	e, _ := efoEnv(t, 2, awstest.FanOutOptions{SubscriptionDuration: 2 * time.Second, Heartbeat: 300 * time.Millisecond})
	p := newProducer()
	p.put(t, e.kc, 100, 5, 40)
	failover := efo(func(c *Config) { c.FailoverTime, c.BalanceLeases = 2*time.Second, &balance })
	a, stopA := e.worker(t, "w1", failover)
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "before the outage")
	testwait.Until(t, 20*time.Second, "the checkpoints to reach the last sequence numbers", func() bool { return maps.Equal(checkpoints(t, e), p.lastSeq) })
	before := checkpoints(t, e)
	e.kafka.Stop()
	b, stopB := e.worker(t, "w2", failover) // would take any lease that runs out
	testwait.Until(t, 10*time.Second, "replica b to find the consumer", func() bool { return b.ConsumerARN() != "" })
	p.put(t, e.kc, 100, 5, 40)
	for end := time.Now().Add(2 * 2 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if cps := checkpoints(t, e); !maps.Equal(cps, before) {
			t.Fatalf("checkpoints moved while Kafka was down: %v, before %v", cps, before)
		}
		for shard, owner := range leaseOwners(t, e) {
			// With balancing, a shard w1 had fully delivered and
			// checkpointed may go to w2 meanwhile; one with a batch in
			// flight is kept until the batch is delivered (keepLease
			// runs during the release's flush too).
			if owner != "w1" && !balance {
				t.Fatalf("shard %s went to %s while w1's processor waited on Kafka", shard, owner)
			}
		}
	}
	e.kafka.Restart(t)
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "after the outage")
	testwait.Until(t, 20*time.Second, "the checkpoints to reach the last sequence numbers", func() bool { return maps.Equal(checkpoints(t, e), p.lastSeq) })
	wantA, wantB := 2, 0
	if balance {
		wantA, wantB = 1, 1
		testwait.Until(t, 20*time.Second, "one shard each", func() bool { return a.LeasesHeld() == 1 && b.LeasesHeld() == 1 })
	}
	if a.LeasesHeld() != wantA || b.LeasesHeld() != wantB {
		t.Errorf("leases held: w1 %d, w2 %d; want %d and %d", a.LeasesHeld(), b.LeasesHeld(), wantA, wantB)
	}
	stopB()
	stopA()
}

// TestEFOResharding splits a shard under an enhanced fan-out worker: the
// parent's subscription ends at the shard end, the parent checkpoints
// SHARD_END, and its children are read after it, so per-key order holds
// (kafkaCounts checks it).
func TestEFOResharding(t *testing.T) {
	e, f := efoEnv(t, 2, awstest.FanOutOptions{SubscriptionDuration: 3 * time.Second, Heartbeat: 300 * time.Millisecond})
	p := newProducer()
	p.put(t, e.kc, 200, 5, 30)
	_, stop := e.worker(t, "w1", efo(nil))
	parent := e.splitFirstShard(t)
	p.put(t, e.kc, 200, 5, 30)
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "across the split")
	id := aws.ToString(parent.ShardId)
	testwait.Until(t, 30*time.Second, "the parent shard to reach SHARD_END", func() bool { return checkpoints(t, e)[id] == "SHARD_END" })
	stop()
	byShard := subscriptionsByShard(f)
	if subs := byShard[id]; len(subs) == 0 || subs[len(subs)-1].End != awstest.EndShardEnd {
		t.Errorf("parent %s: subscriptions %+v, want the last ended at the shard end", id, subs)
	}
	if len(byShard) != 4 {
		t.Errorf("subscriptions to %d shards, want 4 (2 shards, 2 children)", len(byShard))
	}
}

// TestEFOConsumerRegisteredOnce: two replicas starting together and a
// restarted one share one registered consumer: one ARN, one consumer on
// the stream, and the restart registers nothing.
func TestEFOConsumerRegisteredOnce(t *testing.T) {
	e, f := efoEnv(t, 2, awstest.FanOutOptions{SubscriptionDuration: 3 * time.Second, Heartbeat: 300 * time.Millisecond})
	var mu sync.Mutex
	calls := map[string]int{}
	e.st.KinesisProxy.SetFault(func(target string) (int, string, bool) {
		mu.Lock()
		calls[strings.TrimPrefix(target, "Kinesis_20131202.")]++
		mu.Unlock()
		return 0, "", false // count, then pass through
	})
	registrations := func() int { mu.Lock(); defer mu.Unlock(); return calls["RegisterStreamConsumer"] }
	p := newProducer()
	p.put(t, e.kc, 100, 5, 20)
	a, stopA := e.worker(t, "a", efo(nil))
	b, stopB := e.worker(t, "b", efo(nil))
	testwait.Until(t, 30*time.Second, "both replicas to find the consumer", func() bool { return a.ConsumerARN() != "" && b.ConsumerARN() != "" })
	arn := a.ConsumerARN()
	if b.ConsumerARN() != arn {
		t.Fatalf("replicas read with different consumers: %s and %s", arn, b.ConsumerARN())
	}
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "by two replicas")
	before := registrations()
	if before < 1 || before > 2 {
		t.Errorf("%d RegisterStreamConsumer calls by two replicas, want 1 (or 2, the loser of a race answered ResourceInUseException)", before)
	}
	stopA()
	c, stopC := e.worker(t, "c", efo(nil))
	testwait.Until(t, 30*time.Second, "the restarted replica to find the consumer", func() bool { return c.ConsumerARN() != "" })
	if c.ConsumerARN() != arn {
		t.Errorf("the restarted replica reads with %s, want %s", c.ConsumerARN(), arn)
	}
	if n := registrations(); n != before {
		t.Errorf("the restart called RegisterStreamConsumer %d times, want 0", n-before)
	}
	p.put(t, e.kc, 100, 5, 20)
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "after the restart")
	stopB()
	stopC()
	sum, err := e.kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.kc.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: sum.StreamDescriptionSummary.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Consumers) != 1 || aws.ToString(list.Consumers[0].ConsumerARN) != arn {
		t.Errorf("consumers on the stream: %+v, want only %s", list.Consumers, arn)
	}
	for _, s := range f.Subscriptions() {
		if s.ConsumerARN != arn {
			t.Errorf("a subscription with consumer %s", s.ConsumerARN)
		}
	}
}

// TestEFOConsumerLimit: when the stream already has 20 other consumers,
// Run returns at once an error naming the limit, the consumers and the
// remedies (the KCL alone retried for 100 s or more, then returned the
// bare LimitExceededException).
func TestEFOConsumerLimit(t *testing.T) {
	e, f := efoEnv(t, 1, awstest.FanOutOptions{})
	ctx := context.Background()
	sum, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ConsumerLimit {
		in := &kinesis.RegisterStreamConsumerInput{StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String(fmt.Sprintf("other-%02d", i))}
		testwait.Until(t, 20*time.Second, "at most 5 consumers CREATING", func() bool { // at most 5 CREATING at once
			_, err := e.kc.RegisterStreamConsumer(ctx, in, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
			var limit *types.LimitExceededException
			if err != nil && !errors.As(err, &limit) {
				t.Fatal(err)
			}
			return err == nil
		})
	}
	s, err := New(Config{Stream: testStream, Application: "relay-test", WorkerID: "w1", EnhancedFanOut: true, ConsumerName: "relay-efo"},
		Clients{Kinesis: e.kc, DynamoDB: e.dc, Region: "us-east-1"}, e.sink, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	err = s.Run(ctx)
	took := time.Since(start)
	if !errors.Is(err, ErrConsumerLimit) {
		t.Fatalf("Run: %v, want ErrConsumerLimit", err)
	}
	for _, want := range []string{"relay-efo", testStream, "20 consumers are registered", "other-00", "deregister-stream-consumer", "enhanced_fan_out to false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if took > 15*time.Second {
		t.Errorf("the limit was reported after %s, want at once", took)
	}
	if n := len(f.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions without a consumer", n)
	}
	t.Logf("reported after %s: %v", took.Round(time.Millisecond), err)
}

// TestEFOSilentAndRefusedSubscriptions: no heartbeats, so once the shard is
// read a subscription goes silent and the client ends it after 800 ms;
// the KCL's resubscription then comes within Kinesis's window (2 s here)
// and is refused with ResourceInUseException, upon which the KCL drops the
// shard without shutting its processor down. The worker retires that
// processor, takes the shard again, and nothing is lost or left stale.
func TestEFOSilentAndRefusedSubscriptions(t *testing.T) {
	e, f := efoEnv(t, 1, awstest.FanOutOptions{SubscriptionDuration: time.Minute, TakeoverWindow: 2 * time.Second, Heartbeat: time.Hour})
	p := newProducer()
	p.put(t, e.kc, 50, 5, 10)
	s, err := New(Config{Stream: testStream, Application: "relay-test", WorkerID: "w1", ShardSyncInterval: 300 * time.Millisecond,
		FailoverTime: 3 * time.Second, DrainTimeout: 20 * time.Second, ProgressTimeout: 3 * time.Second, EnhancedFanOut: true, ConsumerName: "relay-efo"},
		Clients{Kinesis: e.kc, DynamoDB: e.dc, Region: "us-east-1"}, e.sink, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.subscriptionIdle = 800 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
	requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "before the subscription went silent")
	testwait.Until(t, 20*time.Second, "a refused subscription and a retired processor", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return f.Refused() > 0 && s.retired > 0
	})
	p.put(t, e.kc, 50, 5, 10)
	dups := requireDelivered(t, p.ids, kafkaCounts(t, e, len(p.ids)), "across refused resubscriptions")
	testwait.Until(t, 20*time.Second, "the checkpoints, one lease and no stall", func() bool {
		return maps.Equal(checkpoints(t, e), p.lastSeq) && s.LeasesHeld() == 1 && s.Stalled() == nil
	})
	silent := 0
	for _, sub := range f.Subscriptions() {
		if sub.End == awstest.EndClientGone {
			silent++
		}
	}
	if silent == 0 {
		t.Error("no subscription was ended by the client for silence")
	}
	// Each batch that caught up was checkpointed before the KCL read on,
	// so the processors it dropped had nothing unacknowledged.
	if dups != 0 {
		t.Errorf("%d duplicates, want 0", dups)
	}
	t.Logf("%d subscriptions, %d ended for silence, %d refused, %d processors retired", len(f.Subscriptions()), silent, f.Refused(), s.retired)
}

// TestMonitorRetiresProcessorsTheKCLDropped pairs shard consumers with
// processors: the n-th consumer's end retires the n-th processor unless it
// was shut down, and never a newer one that started first.
func TestMonitorRetiresProcessorsTheKCLDropped(t *testing.T) {
	s := &Stream{log: zerolog.Nop(), m: newMetrics(nil), active: map[string]*processor{}, started: map[string]int{}, ended: map[string]int{}}
	m := monitor{s.m, s}
	proc := func() *processor {
		p := &processor{s: s, shard: "shardId-1", log: zerolog.Nop()}
		s.setActive(p, true) // Initialize
		return p
	}
	m.LeaseGained("shardId-1")
	p1 := proc()
	m.LeaseLost("shardId-1") // ended without Shutdown
	if s.LeasesHeld() != 0 || !p1.lost.Load() {
		t.Fatalf("a dropped processor stays active (%d held, lost %v)", s.LeasesHeld(), p1.lost.Load())
	}
	m.LeaseGained("shardId-1")
	p2 := proc()
	m.LeaseGained("shardId-1") // a newer consumer initialised before the older one's end was announced
	p3 := proc()
	m.LeaseLost("shardId-1")
	if s.LeasesHeld() != 1 || p3.lost.Load() {
		t.Fatalf("the end of consumer 2 retired consumer 3's processor")
	}
	_ = p2
	s.setActive(p3, false) // Shutdown
	m.LeaseLost("shardId-1")
	if s.LeasesHeld() != 0 || p3.lost.Load() {
		t.Fatalf("a processor shut down normally was marked lost")
	}
}

// TestFanOutClientStreams: the EFO client keeps the 30 s timeout for
// ordinary calls but not for SubscribeToShard (a subscription lasts 5
// minutes), and ends a silent subscription.
func TestFanOutClientStreams(t *testing.T) {
	base := kinesis.New(kinesis.Options{Region: "us-east-1", HTTPClient: awshttp.NewBuildableClient().WithTimeout(30 * time.Second)})
	hc := fanOutClient(base, time.Second).Options().HTTPClient.(*subscribeHTTP)
	if got := hc.HTTPClient.(*awshttp.BuildableClient).GetTimeout(); got != 30*time.Second {
		t.Errorf("ordinary calls time out after %s, want 30s", got)
	}
	if got := hc.stream.(*awshttp.BuildableClient).GetTimeout(); got != 0 {
		t.Errorf("subscriptions time out after %s, want no overall timeout", got)
	}
	r, w := io.Pipe()
	defer w.Close()
	body := newIdleBody(r, 100*time.Millisecond)
	go w.Write([]byte("x"))
	buf := make([]byte, 8)
	if n, err := body.Read(buf); n != 1 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	start := time.Now()
	if _, err := body.Read(buf); err == nil {
		t.Fatal("a silent body did not end")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a silent body ended after %s, want ~100ms", took)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Stream: "s"}, ""},
		{Config{}, "source.kinesis.stream"},
		{Config{Stream: "s", InitialPosition: "at_timestamp"}, "source.kinesis.initial_timestamp"},
		{Config{Stream: "s", InitialPosition: "EARLIEST"}, "source.kinesis.initial_position"},
		{Config{Stream: "s", MaxRecords: 20000}, "source.kinesis.max_records"},
		{Config{Stream: "s", FailoverTime: 10}, "source.kinesis.failover_time"},
		{Config{Stream: "s", Format: "xml"}, "source.kinesis.format"},
	}
	for _, tc := range tests {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.c, err, tc.want)
		}
	}
}
