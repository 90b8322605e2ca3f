package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// subscribe serves one SubscribeToShard call: it checks the consumer and
// the starting position as Kinesis does (errors before the stream are
// plain API errors), then streams events until the subscription ends.
func (f *FanOut) subscribe(w http.ResponseWriter, r *http.Request, in subscribeInput) {
	ctx := r.Context()
	c, err := f.kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(in.ConsumerARN)})
	if err != nil {
		passError(w, err)
		return
	}
	if st := c.ConsumerDescription.ConsumerStatus; st != types.ConsumerStatusActive {
		apiError(w, http.StatusBadRequest, "ResourceInUseException", fmt.Sprintf("Consumer %s is %s, not ACTIVE", in.ConsumerARN, st))
		return
	}
	rd := &shardReader{kc: f.kc, stream: streamName(aws.ToString(c.ConsumerDescription.StreamARN)), shard: in.ShardID}
	if err := rd.open(ctx, in); err != nil {
		passError(w, err)
		return
	}
	s, err := f.start(in)
	if err != nil {
		apiError(w, http.StatusBadRequest, "ResourceInUseException", err.Error())
		return
	}
	f.finish(s, f.stream(ctx, w, s, rd))
}

// passError answers with the emulator's API error (or an internal failure).
func passError(w http.ResponseWriter, err error) {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() != smithy.FaultServer {
		apiError(w, http.StatusBadRequest, ae.ErrorCode(), ae.ErrorMessage())
		return
	}
	apiError(w, http.StatusInternalServerError, "InternalFailureException", err.Error())
}

// stream sends the initial response, then an event per read that returned
// records (a heartbeat without records while there are none), and returns
// why the subscription ended.
func (f *FanOut) stream(ctx context.Context, w http.ResponseWriter, s *subscription, rd *shardReader) string {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
	if ew.event("initial-response", []byte("{}")) != nil {
		return EndClientGone
	}
	expire := time.NewTimer(f.opts.SubscriptionDuration)
	defer expire.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	lastSent := time.Now()
	for {
		select {
		case <-ctx.Done():
			return EndClientGone
		case <-s.takeover:
			ew.exception("ResourceInUseException", fmt.Sprintf("Another subscription of consumer %s took over shard %s", s.ConsumerARN, s.ShardID))
			return EndTakenOver
		case <-expire.C:
			return EndExpired
		case <-poll.C:
		}
		out, err := rd.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return EndClientGone
			}
			ew.exception("InternalFailureException", err.Error())
			return "error: " + err.Error()
		}
		if len(out.Records) > 0 || out.NextShardIterator == nil || time.Since(lastSent) >= f.opts.Heartbeat {
			if err := f.send(ctx, ew, s, rd, out); err != nil {
				return EndClientGone
			}
			lastSent = time.Now()
		}
		if out.NextShardIterator == nil {
			return EndShardEnd
		}
		if len(out.Records) == 0 || aws.ToInt64(out.MillisBehindLatest) == 0 {
			poll.Reset(f.opts.PollInterval) // caught up
		} else {
			poll.Reset(0) // a backlog: read on at once
		}
	}
}

// send sends what one GetRecords returned as events of at most
// MaxEventBytes of record data; at shard end the last one has no
// continuation and lists the child shards.
func (f *FanOut) send(ctx context.Context, ew *eventWriter, s *subscription, rd *shardReader, out *kinesis.GetRecordsOutput) error {
	recs := out.Records
	for {
		n, size := 0, 0
		for n < len(recs) && (n == 0 || size+len(recs[n].Data) <= f.opts.MaxEventBytes) {
			size += len(recs[n].Data)
			n++
		}
		ev := shardEvent{Records: make([]eventRecord, 0, n), MillisBehindLatest: aws.ToInt64(out.MillisBehindLatest)}
		for _, r := range recs[:n] {
			ev.Records = append(ev.Records, newEventRecord(r))
			rd.cont = aws.ToString(r.SequenceNumber)
		}
		recs = recs[n:]
		last := len(recs) == 0
		if last && out.NextShardIterator == nil {
			children, err := rd.children(ctx, out.ChildShards)
			if err != nil {
				return err
			}
			ev.ChildShards = children
		} else {
			ev.ContinuationSequenceNumber = aws.String(rd.cont)
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if err := ew.event("SubscribeToShardEvent", payload); err != nil {
			return err
		}
		f.sent(s, n, ev.ContinuationSequenceNumber)
		if last {
			return nil
		}
	}
}

// shardEvent is a SubscribeToShardEvent's payload (awsJson 1.1).
type shardEvent struct {
	Records                    []eventRecord `json:"Records"`
	ContinuationSequenceNumber *string       `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64         `json:"MillisBehindLatest"`
	ChildShards                []childShard  `json:"ChildShards,omitempty"`
}

type eventRecord struct {
	SequenceNumber              string  `json:"SequenceNumber"`
	ApproximateArrivalTimestamp float64 `json:"ApproximateArrivalTimestamp"` // epoch seconds
	Data                        []byte  `json:"Data"`                        // base64
	PartitionKey                string  `json:"PartitionKey"`
	EncryptionType              string  `json:"EncryptionType,omitempty"`
}

func newEventRecord(r types.Record) eventRecord {
	return eventRecord{SequenceNumber: aws.ToString(r.SequenceNumber), Data: r.Data, PartitionKey: aws.ToString(r.PartitionKey),
		ApproximateArrivalTimestamp: float64(aws.ToTime(r.ApproximateArrivalTimestamp).UnixMilli()) / 1000,
		EncryptionType:              string(r.EncryptionType)}
}

type childShard struct {
	ShardID      string   `json:"ShardId"`
	ParentShards []string `json:"ParentShards"`
	HashKeyRange struct {
		StartingHashKey string `json:"StartingHashKey"`
		EndingHashKey   string `json:"EndingHashKey"`
	} `json:"HashKeyRange"`
}

// eventWriter writes event-stream messages and flushes each at once.
type eventWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
}

func (e *eventWriter) write(msg eventstream.Message) error {
	if err := e.enc.Encode(e.w, msg); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *eventWriter) event(eventType string, payload []byte) error {
	var m eventstream.Message
	m.Headers.Set(eventstreamapi.MessageTypeHeader, eventstream.StringValue(eventstreamapi.EventMessageType))
	m.Headers.Set(eventstreamapi.EventTypeHeader, eventstream.StringValue(eventType))
	m.Headers.Set(eventstreamapi.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Payload = payload
	return e.write(m)
}

func (e *eventWriter) exception(excType, msg string) error {
	var m eventstream.Message
	m.Headers.Set(eventstreamapi.MessageTypeHeader, eventstream.StringValue(eventstreamapi.ExceptionMessageType))
	m.Headers.Set(eventstreamapi.ExceptionTypeHeader, eventstream.StringValue(excType))
	m.Headers.Set(eventstreamapi.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Payload, _ = json.Marshal(map[string]string{"message": msg})
	return e.write(m)
}

func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// shardReader reads one shard of the emulator for a subscription. cont is
// the continuation: the sequence number of the last record read, or of the
// position just before the first record to read.
type shardReader struct {
	kc            *kinesis.Client
	stream, shard string
	iter          *string
	cont          string
}

// scanLimit bounds the GetRecords calls of a scan for a starting position.
const scanLimit = 10000

// open validates the starting position with the emulator and positions
// the reader. Kinesis's continuation always names a position in the shard,
// even before any record was read; for LATEST, AT_TIMESTAMP and
// AT_SEQUENCE_NUMBER that is the record before the start, found by
// scanning the shard, and the reader continues after it.
func (rd *shardReader) open(ctx context.Context, in subscribeInput) error {
	p := in.StartingPosition
	gi := &kinesis.GetShardIteratorInput{StreamName: aws.String(rd.stream), ShardId: aws.String(rd.shard),
		ShardIteratorType: types.ShardIteratorType(p.Type)}
	if p.SequenceNumber != "" {
		gi.StartingSequenceNumber = aws.String(p.SequenceNumber)
	}
	if p.Timestamp != nil {
		gi.Timestamp = aws.Time(epoch(*p.Timestamp))
	}
	it, err := rd.kc.GetShardIterator(ctx, gi)
	if err != nil {
		return err
	}
	start, err := rd.startingSequence(ctx)
	if err != nil {
		return err
	}
	var before func(types.Record) bool
	switch gi.ShardIteratorType {
	case types.ShardIteratorTypeTrimHorizon:
		rd.iter, rd.cont = it.ShardIterator, start
		return nil
	case types.ShardIteratorTypeAfterSequenceNumber:
		rd.iter, rd.cont = it.ShardIterator, p.SequenceNumber
		return nil
	case types.ShardIteratorTypeLatest:
		before = func(types.Record) bool { return true }
	case types.ShardIteratorTypeAtTimestamp:
		before = func(r types.Record) bool { return aws.ToTime(r.ApproximateArrivalTimestamp).Before(*gi.Timestamp) }
	case types.ShardIteratorTypeAtSequenceNumber:
		at, _ := new(big.Int).SetString(p.SequenceNumber, 10)
		before = func(r types.Record) bool {
			n, _ := new(big.Int).SetString(aws.ToString(r.SequenceNumber), 10)
			return n != nil && at != nil && n.Cmp(at) < 0
		}
	default:
		return &types.InvalidArgumentException{Message: aws.String("unsupported StartingPosition type " + p.Type)}
	}
	pred, err := rd.scan(ctx, start, before)
	if err != nil {
		return err
	}
	rd.cont = pred
	if pred == start {
		gi = &kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
	} else {
		gi = &kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(pred)}
	}
	gi.StreamName, gi.ShardId = aws.String(rd.stream), aws.String(rd.shard)
	it, err = rd.kc.GetShardIterator(ctx, gi)
	if err != nil {
		return err
	}
	rd.iter = it.ShardIterator
	return nil
}

// scan returns the sequence number of the last record for which before
// holds, reading from the start of the shard; start when there is none.
func (rd *shardReader) scan(ctx context.Context, start string, before func(types.Record) bool) (string, error) {
	it, err := rd.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(rd.stream), ShardId: aws.String(rd.shard),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return "", err
	}
	pred, iter := start, it.ShardIterator
	for range scanLimit {
		out, err := rd.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return "", err
		}
		for _, r := range out.Records {
			if !before(r) {
				return pred, nil
			}
			pred = aws.ToString(r.SequenceNumber)
		}
		if out.NextShardIterator == nil || (len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0) {
			return pred, nil
		}
		iter = out.NextShardIterator
	}
	return "", fmt.Errorf("scanning shard %s: more than %d reads", rd.shard, scanLimit)
}

// next reads the records after the last one read.
func (rd *shardReader) next(ctx context.Context) (*kinesis.GetRecordsOutput, error) {
	out, err := rd.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: rd.iter})
	if err != nil {
		return nil, fmt.Errorf("reading shard %s of stream %s: %w", rd.shard, rd.stream, err)
	}
	rd.iter = out.NextShardIterator
	return out, nil
}

// shards lists the stream's shards.
func (rd *shardReader) shards(ctx context.Context) ([]types.Shard, error) {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(rd.stream)}
	for {
		out, err := rd.kc.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// startingSequence is the shard's first sequence number: the position
// before its first record.
func (rd *shardReader) startingSequence(ctx context.Context) (string, error) {
	all, err := rd.shards(ctx)
	if err != nil {
		return "", err
	}
	for _, sh := range all {
		if aws.ToString(sh.ShardId) == rd.shard {
			return aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber), nil
		}
	}
	return "", &types.ResourceNotFoundException{Message: aws.String(fmt.Sprintf("Shard %s in stream %s does not exist", rd.shard, rd.stream))}
}

// children are the child shards of a closed shard: those GetRecords
// returned, or else those ListShards names the shard a parent of.
func (rd *shardReader) children(ctx context.Context, got []types.ChildShard) ([]childShard, error) {
	var out []childShard
	add := func(id string, parents []string, r *types.HashKeyRange) {
		c := childShard{ShardID: id, ParentShards: parents}
		c.HashKeyRange.StartingHashKey, c.HashKeyRange.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		out = append(out, c)
	}
	for _, c := range got {
		add(aws.ToString(c.ShardId), c.ParentShards, c.HashKeyRange)
	}
	if len(out) > 0 {
		return out, nil
	}
	all, err := rd.shards(ctx)
	if err != nil {
		return nil, err
	}
	for _, sh := range all {
		if aws.ToString(sh.ParentShardId) == rd.shard || aws.ToString(sh.AdjacentParentShardId) == rd.shard {
			var parents []string
			for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if aws.ToString(p) != "" {
					parents = append(parents, aws.ToString(p))
				}
			}
			add(aws.ToString(sh.ShardId), parents, sh.HashKeyRange)
		}
	}
	return out, nil
}
