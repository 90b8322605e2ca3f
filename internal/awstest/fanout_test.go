package awstest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
)

// fanOutEnv is kinesis-local behind a FanOut (no signing proxy) and an SDK
// client of the FanOut.
type fanOutEnv struct {
	f  *FanOut
	kc *kinesis.Client
}

func newFanOutEnv(t *testing.T, o FanOutOptions) *fanOutEnv {
	t.Helper()
	IsolateEnv(t)
	k := StartKinesis(t)
	f := NewFanOut(t, k.URL, k.URL, nil, o)
	kc := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
	return &fanOutEnv{f: f, kc: kc}
}

// stream creates a stream with one shard and registers a consumer on it;
// it returns the consumer ARN and the shard.
func (e *fanOutEnv) stream(t *testing.T, name string) (string, types.Shard) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var d *kinesis.DescribeStreamOutput
	poll(t, 10*time.Second, func() bool {
		var err error
		d, err = e.kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)})
		return err == nil && d.StreamDescription.StreamStatus == types.StreamStatusActive
	})
	r, err := e.kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: d.StreamDescription.StreamARN, ConsumerName: aws.String("efo")})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, func() bool {
		c, err := e.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: r.Consumer.ConsumerARN})
		return err == nil && c.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
	})
	return aws.ToString(r.Consumer.ConsumerARN), d.StreamDescription.Shards[0]
}

func (e *fanOutEnv) put(t *testing.T, stream string, n int) []string {
	t.Helper()
	var seqs []string
	for i := range n {
		out, err := e.kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream), Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	return seqs
}

func (e *fanOutEnv) subscribe(t *testing.T, arn, shard string, pos types.StartingPosition) *kinesis.SubscribeToShardOutput {
	t.Helper()
	var out *kinesis.SubscribeToShardOutput
	// Within the takeover window of the previous subscription Kinesis
	// answers ResourceInUseException: try again until it has passed.
	poll(t, 5*time.Second, func() bool {
		var err error
		out, err = e.kc.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String(shard), StartingPosition: &pos}, ownCodec)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			t.Fatalf("SubscribeToShard %s: %v", shard, err)
		}
		return err == nil
	})
	t.Cleanup(func() { out.GetStream().Close() })
	return out
}

// ownCodec gives a subscription a protocol codec of its own: the SDK's
// (smithy-go v1.28.8) is shared by all streams of a client and not safe
// for concurrent streams (see internal/kinesis's fanOutClient).
func ownCodec(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) }

// events reads the subscription's events until it ends or until stop
// returns true, within 10 s.
func events(t *testing.T, sub *kinesis.SubscribeToShardOutput, stop func([]types.SubscribeToShardEvent) bool) []types.SubscribeToShardEvent {
	t.Helper()
	var evs []types.SubscribeToShardEvent
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.GetStream().Events():
			if !ok {
				return evs
			}
			e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !isEvent {
				t.Fatalf("unexpected event %T", ev)
			}
			evs = append(evs, e.Value)
			if stop != nil && stop(evs) {
				return evs
			}
		case <-timeout:
			t.Fatalf("subscription still open after 10 s, %d events", len(evs))
		}
	}
}

func recordSeqs(evs []types.SubscribeToShardEvent) []string {
	var seqs []string
	for _, ev := range evs {
		for _, r := range ev.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
	}
	return seqs
}

func gotRecords(n int) func([]types.SubscribeToShardEvent) bool {
	return func(evs []types.SubscribeToShardEvent) bool { return len(recordSeqs(evs)) >= n }
}

func poll(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestFanOutSubscribeToShard drives the SDK's own SubscribeToShard client
// against the FanOut: initial response, events with records in order, the
// end after the subscription's duration, and resubscription from the
// continuation without loss or duplicate; the shard end with child shards;
// heartbeats carrying a continuation before any record; LATEST and
// AT_TIMESTAMP; takeover; AWS's errors.
func TestFanOutSubscribeToShard(t *testing.T) {
	e := newFanOutEnv(t, FanOutOptions{SubscriptionDuration: time.Second, TakeoverWindow: 300 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	t.Run("ExpiryAndContinuation", func(t *testing.T) {
		arn, sh := e.stream(t, "expiry")
		seqs := e.put(t, "expiry", 5)
		sub := e.subscribe(t, arn, aws.ToString(sh.ShardId), types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		evs := events(t, sub, nil) // to the end of the subscription
		if err := sub.GetStream().Err(); err != nil {
			t.Fatalf("stream error after expiry: %v", err)
		}
		if got := recordSeqs(evs); !equal(got, seqs) {
			t.Fatalf("records %v, want %v", got, seqs)
		}
		cont := aws.ToString(evs[len(evs)-1].ContinuationSequenceNumber)
		if cont != seqs[4] {
			t.Errorf("continuation %s, want the last record's %s", cont, seqs[4])
		}
		subs := e.f.Subscriptions()
		if last := subs[len(subs)-1]; last.End != EndExpired || last.Ended.Sub(last.Started) < time.Second {
			t.Errorf("subscription %+v, want expired after 1s", last)
		}
		more := e.put(t, "expiry", 3)
		sub = e.subscribe(t, arn, aws.ToString(sh.ShardId), types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(cont)})
		if got := recordSeqs(events(t, sub, gotRecords(3))); !equal(got, more) {
			t.Errorf("after resubscribing: records %v, want %v", got, more)
		}
	})
	t.Run("ContinuationBeforeAnyRecord", func(t *testing.T) {
		arn, sh := e.stream(t, "empty")
		id := aws.ToString(sh.ShardId)
		sub := e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		hb := events(t, sub, func([]types.SubscribeToShardEvent) bool { return true })
		cont := aws.ToString(hb[0].ContinuationSequenceNumber)
		if len(hb[0].Records) != 0 || cont != aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber) {
			t.Fatalf("heartbeat %+v, want no records and the shard's starting sequence number", hb[0])
		}
		sub.GetStream().Close()
		seqs := e.put(t, "empty", 2)
		start := time.Now()
		time.Sleep(10 * time.Millisecond) // arrival times are in milliseconds
		later := e.put(t, "empty", 1)
		sub = e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(cont)})
		if got, want := recordSeqs(events(t, sub, gotRecords(3))), append(seqs, later...); !equal(got, want) {
			t.Errorf("after the heartbeat's continuation: records %v, want %v", got, want)
		}
		sub.GetStream().Close()
		at := e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(start)})
		if got := recordSeqs(events(t, at, gotRecords(1))); !equal(got, later) {
			t.Errorf("AT_TIMESTAMP: records %v, want %v", got, later)
		}
		at.GetStream().Close()
		latest := e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
		hb = events(t, latest, func([]types.SubscribeToShardEvent) bool { return true })
		if c := aws.ToString(hb[0].ContinuationSequenceNumber); c != later[0] {
			t.Errorf("LATEST: first continuation %s, want the last record's %s", c, later[0])
		}
		newest := e.put(t, "empty", 1)
		if got := recordSeqs(events(t, latest, gotRecords(1))); !equal(got, newest) {
			t.Errorf("LATEST: records %v, want %v", got, newest)
		}
	})
	t.Run("ShardEnd", func(t *testing.T) {
		arn, sh := e.stream(t, "split")
		parent := aws.ToString(sh.ShardId)
		seqs := e.put(t, "split", 2)
		start, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
		end, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
		mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
		if _, err := e.kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("split"), ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
			t.Fatal(err)
		}
		var children []types.Shard
		poll(t, 10*time.Second, func() bool {
			out, err := e.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("split")})
			if err != nil || len(out.Shards) < 3 {
				return false
			}
			children = out.Shards[1:]
			return true
		})
		sub := e.subscribe(t, arn, parent, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		evs := events(t, sub, nil)
		last := evs[len(evs)-1]
		if got := recordSeqs(evs); !equal(got, seqs) || last.ContinuationSequenceNumber != nil || len(last.ChildShards) != 2 {
			t.Fatalf("parent: records %v (want %v), last event %+v: want no continuation and 2 child shards", got, seqs, last)
		}
		if subs := e.f.Subscriptions(); subs[len(subs)-1].End != EndShardEnd {
			t.Errorf("subscription ended %q, want %q", subs[len(subs)-1].End, EndShardEnd)
		}
		// A child's starting sequence number is a valid continuation too.
		// The records are written first: under load the puts could take
		// longer than the compressed 1 s subscription.
		child := children[0]
		var want []string
		for i := 0; len(want) < 2 && i < 50; i++ {
			out, err := e.kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("split"), Data: []byte("c"), PartitionKey: aws.String(fmt.Sprint(i))})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.ShardId) == aws.ToString(child.ShardId) {
				want = append(want, aws.ToString(out.SequenceNumber))
			}
		}
		sub = e.subscribe(t, arn, aws.ToString(child.ShardId), types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: child.SequenceNumberRange.StartingSequenceNumber})
		if got := recordSeqs(events(t, sub, gotRecords(len(want)))); !equal(got, want) {
			t.Errorf("child after its starting sequence number: records %v, want %v", got, want)
		}
	})
	t.Run("Takeover", func(t *testing.T) {
		arn, sh := e.stream(t, "takeover")
		id := aws.ToString(sh.ShardId)
		first := e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
		_, err := e.kc.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String(id),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}, ownCodec)
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			t.Fatalf("second subscription within the window: %v, want ResourceInUseException", err)
		}
		e.subscribe(t, arn, id, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}) // once the window passed
		events(t, first, nil)
		if err := first.GetStream().Err(); !errors.As(err, &inUse) {
			t.Errorf("the subscription taken over ended with %v, want ResourceInUseException", err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		arn, sh := e.stream(t, "errors")
		_, err := e.kc.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(strings.Replace(arn, "/consumer/efo:", "/consumer/nope:", 1)), ShardId: sh.ShardId,
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}, ownCodec)
		var notFound *types.ResourceNotFoundException
		if !errors.As(err, &notFound) {
			t.Errorf("unknown consumer: %v, want ResourceNotFoundException", err)
		}
		_, err = e.kc.SubscribeToShard(context.Background(), &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000042"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}}, ownCodec)
		if !errors.As(err, &notFound) {
			t.Errorf("unknown shard: %v, want ResourceNotFoundException", err)
		}
		// Registration passes through to kinesis-local, which answers as
		// AWS does (internal/kinesis tests its limit of 20 per stream).
		d, err := e.kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("errors")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.kc.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{StreamARN: d.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("efo")})
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) {
			t.Errorf("registering a name taken: %v, want ResourceInUseException", err)
		}
	})
}
