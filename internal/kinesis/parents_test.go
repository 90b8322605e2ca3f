package kinesis

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

// TestParentsWaitErrors: while a child shard waits for its parent, an
// error no retry mends (AccessDenied from DynamoDB or Kinesis) is returned
// at once, naming the table or stream and the operation, instead of
// waiting forever; a throttled DynamoDB is retried until it answers.
func TestParentsWaitErrors(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	parent := e.splitFirstShard(t)
	desc, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(testStream)})
	if err != nil {
		t.Fatal(err)
	}
	var child string
	for _, sh := range desc.Shards {
		if aws.ToString(sh.ParentShardId) == aws.ToString(parent.ShardId) {
			child = aws.ToString(sh.ShardId)
		}
	}
	const table = "relay-parents"
	if err := EnsureLeaseTable(ctx, e.dc, table); err != nil {
		t.Fatal(err)
	}
	// The parent has finished: a wait that reaches DynamoDB returns.
	if _, err := e.dc.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]ddbtypes.AttributeValue{
		checkpoint.LeaseKeyKey:       &ddbtypes.AttributeValueMemberS{Value: aws.ToString(parent.ShardId)},
		checkpoint.SequenceNumberKey: &ddbtypes.AttributeValueMemberS{Value: checkpoint.ShardEnd},
	}}); err != nil {
		t.Fatal(err)
	}

	const denied = `{"__type":"com.amazonaws.dynamodb.v20120810#AccessDeniedException","message":"User: arn:aws:sts::111122223333:assumed-role/r/s is not authorized to perform: dynamodb:GetItem"}`
	const throttled = `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`
	const kinesisDenied = `{"__type":"AccessDeniedException","message":"not authorized to perform: kinesis:ListShards"}`
	tests := []struct {
		name        string
		ddb, kin    func(n int32, target string) (int, string, bool)
		wantErr     []string // "" parts: none, wait must return nil
		wantAtLeast int32    // GetItem calls answered by the fault
	}{
		{"dynamodb access denied surfaces", func(_ int32, target string) (int, string, bool) {
			return 400, denied, strings.HasSuffix(target, ".GetItem")
		}, nil, []string{"AccessDeniedException", "lease table " + table, "DynamoDB GetItem", "parent shard " + aws.ToString(parent.ShardId)}, 1},
		{"kinesis access denied surfaces", nil, func(_ int32, target string) (int, string, bool) {
			return 400, kinesisDenied, strings.HasSuffix(target, ".ListShards")
		}, []string{"AccessDeniedException", "stream " + testStream, "Kinesis ListShards"}, 0},
		{"dynamodb throttling is retried", func(n int32, target string) (int, string, bool) {
			return 400, throttled, strings.HasSuffix(target, ".GetItem") && n <= 4
		}, nil, nil, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			inject := func(f func(int32, string) (int, string, bool)) func(string) (int, string, bool) {
				if f == nil {
					return nil
				}
				return func(target string) (int, string, bool) {
					n := calls.Add(1)
					return f(n, target)
				}
			}
			e.st.DynamoDBProxy.SetFault(inject(tc.ddb))
			e.st.KinesisProxy.SetFault(inject(tc.kin))
			defer e.st.DynamoDBProxy.SetFault(nil)
			defer e.st.KinesisProxy.SetFault(nil)
			s, err := New(Config{Stream: testStream, LeaseTable: table}, Clients{Kinesis: e.kc, DynamoDB: e.dc, Region: "us-east-1"}, e.sink, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = s.parents.wait(wctx, child)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("wait = %v, want nil after the retries", err)
				}
			} else {
				if err == nil || wctx.Err() != nil {
					t.Fatalf("wait = %v after %s, want the error at once", err, 20*time.Second)
				}
				for _, part := range tc.wantErr {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("wait error %q lacks %q", err, part)
					}
				}
			}
			if calls.Load() < tc.wantAtLeast {
				t.Errorf("%d faulted calls, want at least %d", calls.Load(), tc.wantAtLeast)
			}
		})
	}
}
