// Package iam_test proves the IAM documents in deploy/iam: it runs the real
// `consumer` binary through every code path that calls AWS (credentials,
// replay from S3, stream in polling and enhanced fan-out mode, backfill, a
// shard leaving the stream), records each request on the wire
// (SigV4-verifying proxies in front of kinesis-local, dynalite and
// gofakes3, and the STS test server), and evaluates each one against the
// policy of the role whose credentials signed it. It fails when a request
// is not allowed; when a document grants something no request used,
// unless the grant is listed below with the reason it is needed anyway;
// when a document filled in for another stream, table, bucket or role
// would still allow these requests (a resource broader than its
// placeholder); and when an operation in the KCL's source is not granted.
package iam_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/testwait"
)

// The documents, and which principal each one governs.
const (
	readerFile = "reader-policy.json" // the customer-side role assumed with the external ID (aws.stream_role)
	relayFile  = "relay-policy.json"  // the pod's own role (IRSA): base credentials
	trustFile  = "trust-policy.json"  // the customer-side role's trust policy
)

// serviceSide are grants no client request uses because an AWS service
// exercises them on the caller's behalf. They must be in the documents and
// must never show up as a request.
var serviceSide = map[string]string{
	"kms:Decrypt": "Kinesis decrypts records of a stream encrypted with a customer-managed CMK using the reader's " +
		"kms:Decrypt permission while serving GetRecords and SubscribeToShard (hence the kms:ViaService condition); " +
		"eventrelay itself makes no KMS call",
}

// notExercised are grants for calls the KCL makes only in situations the
// local emulators cannot produce, with the reason. Each must be an
// operation the KCL's source calls and must not have been recorded (else
// the entry is stale), both checked. None at present: every operation in
// the KCL's source is recorded by some path. A KCL upgrade that calls a
// new operation fails the test until a path records it or it is listed
// here.
var notExercised = map[string]string{}

// bypassed are operations in the KCL's source that eventrelay keeps from
// running, so no document grants them and no path may record them.
var bypassed = map[string]string{
	"kinesis:DescribeStream": "only the KCL's own enhanced fan-out registration calls it; internal/kinesis/efo.go registers the consumer and hands the KCL its ARN, so that code never runs",
}

// noPermission are requests IAM does not authorize.
var noPermission = map[string]string{
	"sts:GetCallerIdentity": "needs no permission and cannot be denied (consumer credentials prints who it is)",
}

// TestPoliciesAllowExactlyWhatTheCodeCalls runs each path and evaluates
// what it sent.
func TestPoliciesAllowExactlyWhatTheCodeCalls(t *testing.T) {
	start := time.Now()
	r := newRig(t)
	runs := []run{r.credentialsPath(), r.replayPath(), r.streamPath(), r.backfillPath(), r.efoPath(), r.efoLimitPath(), r.shardGonePath()}
	t.Logf("stack, build and paths took %s", time.Since(start).Round(100*time.Millisecond))
	r.check(runs)
}

func (r *rig) credentialsPath() run {
	idFile := filepath.Join(r.t.TempDir(), "external-id")
	if err := os.WriteFile(idFile, []byte(r.st.ExternalID), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return r.record("credentials", "", "", func() {
		p := r.start(r.env(), "credentials", "--region", region, "--sts-endpoint", r.st.STS.URL, "--role-arn", r.st.Role, "--external-id-file", idFile)
		if err := p.wait(); err != nil {
			r.t.Fatalf("consumer credentials: %v\n%s", err, p.logs)
		}
	}).expect("sts:AssumeRole", "sts:GetCallerIdentity")
}

func (r *rig) replayPath() run {
	r.putExport("export-1.gz", time.Date(2024, 2, 1, 8, 10, 0, 0, time.UTC), ids("replay-a", 3)...)
	r.putExport("export-2.gz", time.Date(2024, 2, 1, 9, 10, 0, 0, time.UTC), ids("replay-b", 2)...)
	state := filepath.Join(r.t.TempDir(), "replay.json")
	return r.record("replay", "", "", func() {
		p := r.start(r.env(), "replay", "s3://"+bucket+"/"+prefix, "--from", "2024-02-01T08", "--to", "2024-02-01T10", "--sink", "stdout", "--state", state)
		if err := p.wait(); err != nil || events(p.out.String()) != 5 {
			r.t.Fatalf("consumer replay: %v, %d events, want 5\n%s", err, events(p.out.String()), p.logs)
		}
	}).expect("s3:ListBucket", "s3:GetObject")
}

// streamPath reads a stream of 2 shards, reshards it to 4 (parents end,
// children wait for them) and drains on SIGTERM (leases released). Lease
// stealing is on, so the KCL also scans the lease table for other workers.
func (r *rig) streamPath() run {
	const stream = "iam-stream"
	r.createStream(stream, 2, ids("first", 20)...)
	return r.record("stream", stream, stream, func() {
		p := r.start(r.streamEnv(stream, stream, "EVENTRELAY_SOURCE_KINESIS_LEASE_STEALING=true"), "stream")
		p.waitOut("20 events", func(o string) bool { return events(o) >= 20 })
		if _, err := r.kin.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{StreamName: aws.String(stream),
			TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
			r.t.Fatalf("resharding %s: %v", stream, err)
		}
		r.waitActive(stream)
		r.put(stream, ids("second", 20)...)
		p.waitOut("40 events", func(o string) bool { return events(o) >= 40 })
		if err := p.stop(); err != nil {
			r.t.Fatalf("consumer stream after SIGTERM: %v\n%s", err, p.logs)
		}
	}).expect("sts:AssumeRole", "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords",
		"dynamodb:CreateTable", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan")
}

// backfillPath: `stream --backfill` on a new lease table replays the
// export from S3, then follows the stream.
func (r *rig) backfillPath() run {
	const stream = "iam-backfill"
	now := time.Now().UTC()
	r.putExport("backfill-1.gz", now.Add(-20*time.Minute), ids("exported", 5)...)
	r.createStream(stream, 1, ids("live", 5)...)
	return r.record("backfill", stream, stream, func() {
		p := r.start(r.streamEnv(stream, stream), "stream", "--backfill", "s3://"+bucket+"/"+prefix, "--backfill-from", now.Add(-time.Hour).Format(time.RFC3339))
		p.waitOut("10 events", func(o string) bool { return events(o) >= 10 })
		p.waitLogs("the backfill", func(l string) bool { return strings.Contains(l, "backfill done") })
		if err := p.stop(); err != nil {
			r.t.Fatalf("consumer stream --backfill after SIGTERM: %v\n%s", err, p.logs)
		}
	}).expect("dynamodb:Scan", "s3:ListBucket", "s3:GetObject", "kinesis:GetRecords")
}

// efoPath runs the worker with enhanced fan-out. kinesis-local registers
// the consumer, but its SubscribeToShard answer lacks the initial-response
// event aws-sdk-go-v2 requires, so no record arrives: the path ends once
// the subscription was requested (it is on the wire, so recorded).
func (r *rig) efoPath() run {
	const stream = "iam-efo"
	r.createStream(stream, 1, ids("efo", 1)...)
	return r.record("stream (enhanced fan-out)", stream, stream, func() {
		p := r.start(r.streamEnv(stream, stream, "EVENTRELAY_SOURCE_KINESIS_ENHANCED_FAN_OUT=true",
			"EVENTRELAY_SOURCE_KINESIS_CONSUMER_NAME="+consumerName), "stream")
		p.waitLogs("a SubscribeToShard request", func(l string) bool { return strings.Contains(l, "subscribe to shard") })
		p.stop() // the shard consumer failed; how the drain ends does not matter here
	}).expect("kinesis:DescribeStreamConsumer", "kinesis:RegisterStreamConsumer", "kinesis:SubscribeToShard")
}

// efoLimitPath: the stream already has its 20 enhanced fan-out consumers.
// The worker's registration is refused (LimitExceededException, which AWS
// also answers to a registration rate), so it lists the consumers to tell
// the limit apart, and exits 2 naming it.
func (r *rig) efoLimitPath() run {
	const stream = "iam-efo-limit"
	r.createStream(stream, 1)
	r.fillConsumers(stream, 20)
	return r.record("stream (enhanced fan-out, consumer limit reached)", stream, stream, func() {
		p := r.start(r.streamEnv(stream, stream, "EVENTRELAY_SOURCE_KINESIS_ENHANCED_FAN_OUT=true",
			"EVENTRELAY_SOURCE_KINESIS_CONSUMER_NAME="+consumerName), "stream")
		var ee *exec.ExitError
		if err := p.wait(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
			r.t.Fatalf("at the consumer limit the worker ended with %v, want exit 2\n%s", err, p.status())
		}
	}).expect("kinesis:RegisterStreamConsumer", "kinesis:ListStreamConsumers")
}

// fillConsumers registers n consumers on stream directly (unrecorded), at
// most 5 at a time as Kinesis allows, and waits until they are ACTIVE.
func (r *rig) fillConsumers(stream string, n int) {
	r.t.Helper()
	ctx := context.Background()
	sum, err := r.kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		r.t.Fatal(err)
	}
	arn := sum.StreamDescriptionSummary.StreamARN
	for i := 0; i < n; i++ {
		if _, err := r.kin.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String(fmt.Sprintf("other-%02d", i))}); err != nil {
			r.t.Fatalf("registering consumer %d: %v", i, err)
		}
		if i%5 == 4 || i == n-1 {
			testwait.Until(r.t, 30*time.Second, "the consumers to turn ACTIVE", func() bool {
				out, err := r.kin.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: arn})
				if err != nil {
					return false
				}
				for _, c := range out.Consumers {
					if c.ConsumerStatus != "ACTIVE" {
						return false
					}
				}
				return len(out.Consumers) == i+1
			})
		}
	}
}

const consumerName = "relay-efo"

// shardGonePath: when a shard leaves the stream while the worker runs (in
// production, a closed parent shard past the retention period), the KCL
// deletes its lease row. kinesis-local expires no shard, so the stream is
// deleted and created again with one shard fewer: shardId-000000000001 is
// gone at the next shard sync. (The remaining shard's checkpoint then
// names a sequence number of the old stream, so its reads fail; that is
// the artefact of recreating the stream, not part of the path.)
func (r *rig) shardGonePath() run {
	const stream = "iam-shard-gone"
	r.createStream(stream, 2, ids("gone", 10)...)
	return r.record("stream (a shard leaves the stream)", stream, stream, func() {
		// The KCL logs the removal at its Infof, eventrelay's debug level.
		p := r.start(r.streamEnv(stream, stream, "EVENTRELAY_LOG_LEVEL=debug"), "stream")
		p.waitOut("10 events", func(o string) bool { return events(o) >= 10 })
		ctx := context.Background()
		if _, err := r.kin.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)}); err != nil {
			r.t.Fatalf("deleting stream %s: %v", stream, err)
		}
		if err := kinesis.NewStreamNotExistsWaiter(r.kin, func(o *kinesis.StreamNotExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond }).
			Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, waitFor); err != nil {
			r.t.Fatalf("waiting for stream %s to go: %v", stream, err)
		}
		r.createStream(stream, 1)
		p.waitLogs("the lease row of the gone shard removed", func(l string) bool {
			return strings.Contains(l, "Lease info for shard: shardId-000000000001 has been removed")
		})
		p.stop() // the remaining shard's reads fail (see above); how the drain ends does not matter here
	}).expect("dynamodb:DeleteItem")
}
