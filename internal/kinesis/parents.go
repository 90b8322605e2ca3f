package kinesis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/retry"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

// parents knows each shard's parents (split: one; merge: two) so a child
// is read only after its parents reached SHARD_END.
//
// The KCL waits for a parent only when the parent already has a row in the
// lease table: a parent nobody has leased yet, or the adjacent parent of a
// merge, is ignored and the child is read at once, which breaks per-key
// order across resharding. This closes that gap.
type parents struct {
	s  *Stream
	mu sync.Mutex
	of map[string][]string // shard -> parent shard ids (only shards that exist)
}

// refresh lists the stream's shards.
func (p *parents) refresh(ctx context.Context) error {
	of := map[string][]string{}
	exists := map[string]bool{}
	in := &kinesis.ListShardsInput{StreamName: aws.String(p.s.cfg.Stream)}
	for {
		var out *kinesis.ListShardsOutput
		err := p.call(ctx, "listing shards", func() (err error) {
			out, err = p.s.clients.Kinesis.ListShards(ctx, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("listing shards of stream %s (Kinesis ListShards): %w", p.s.cfg.Stream, err)
		}
		for _, sh := range out.Shards {
			id := aws.ToString(sh.ShardId)
			exists[id] = true
			for _, parent := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if aws.ToString(parent) != "" {
					of[id] = append(of[id], aws.ToString(parent))
				}
			}
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	// A parent that left the stream (past retention) holds nothing to wait for.
	for id, ps := range of {
		kept := ps[:0]
		for _, parent := range ps {
			if exists[parent] {
				kept = append(kept, parent)
			}
		}
		of[id] = kept
	}
	p.mu.Lock()
	p.of = of
	p.mu.Unlock()
	return nil
}

func (p *parents) lookup(shard string) ([]string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps, ok := p.of[shard]
	return ps, ok
}

// wait blocks until every parent of shard has checkpointed SHARD_END, or
// ctx ends. Transient AWS errors are retried (see call); any other error
// is returned, naming the stream or table and the operation.
func (p *parents) wait(ctx context.Context, shard string) error {
	ps, known := p.lookup(shard)
	if !known {
		if err := p.refresh(ctx); err != nil {
			return err
		}
		ps, _ = p.lookup(shard)
	}
	for _, parent := range ps {
		for logged := false; ; {
			var done bool
			err := p.call(ctx, "reading the parent shard's checkpoint", func() (err error) {
				done, err = p.finished(ctx, parent)
				return err
			})
			if err != nil {
				return fmt.Errorf("waiting for parent shard %s of %s: %w", parent, shard, err)
			}
			if done {
				break
			}
			if !logged {
				p.s.log.Info().Str("shard_id", shard).Str("parent_shard_id", parent).Msg("waiting for the parent shard to finish before reading its child")
				logged = true
			}
			if err := backoff.Sleep(ctx, parentPoll); err != nil {
				return err
			}
		}
	}
	return nil
}

// parentPoll is how often a parent's checkpoint is read while it is not
// finished.
const parentPoll = 500 * time.Millisecond

// Retrying transient AWS errors: capped exponential backoff, a warning
// on the first failure and then once per logEvery attempts.
const (
	retryMin = 200 * time.Millisecond
	retryMax = 10 * time.Second
	logEvery = 10
)

// call runs op until it succeeds, fails with an error retry.AWS does not
// call transient, or ctx ends (then it returns ctx's error).
func (p *parents) call(ctx context.Context, what string, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retry.AWS(ctx, err) {
			return err
		}
		if attempt == 1 || attempt%logEvery == 0 {
			p.s.log.Warn().Err(err).Int("attempts", attempt).Msg(what + " failed; retrying")
		}
		if err := backoff.Sleep(ctx, backoff.Delay(attempt, retryMin, retryMax)); err != nil {
			return err
		}
	}
}

// finished reports whether parent's checkpoint is SHARD_END.
func (p *parents) finished(ctx context.Context, parent string) (bool, error) {
	out, err := p.s.clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(p.s.cfg.LeaseTable),
		Key:            map[string]ddbtypes.AttributeValue{checkpoint.LeaseKeyKey: &ddbtypes.AttributeValueMemberS{Value: parent}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		var notFound *ddbtypes.ResourceNotFoundException
		if errors.As(err, &notFound) {
			return false, fmt.Errorf("lease table %s is gone: %w", p.s.cfg.LeaseTable, err)
		}
		return false, fmt.Errorf("reading lease table %s (DynamoDB GetItem): %w", p.s.cfg.LeaseTable, err)
	}
	cp, ok := out.Item[checkpoint.SequenceNumberKey].(*ddbtypes.AttributeValueMemberS)
	return ok && cp.Value == checkpoint.ShardEnd, nil
}
