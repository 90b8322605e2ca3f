package kinesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/retry"
)

// Enhanced fan-out (EFO): the worker registers the stream consumer itself
// and hands the KCL its ARN. The library (v1.0.0) would register it too,
// but it retries every failure alike for ~100 s without a context, so a
// stream at its consumer limit, or a stop signal, waited that long for a
// vague "Failed to fetch consumer ARN"; here the limit is an immediate,
// explicit error and the wait follows ctx.

// ConsumerLimit is how many enhanced fan-out consumers Kinesis registers on
// one stream (On-demand Advantage streams allow 50; the check below goes by
// what the stream reports, not by this number).
const ConsumerLimit = 20

// ErrConsumerLimit is returned (wrapped) by Run when the stream already has
// as many registered consumers as Kinesis allows and ours is not one.
var ErrConsumerLimit = errors.New("the stream has reached its limit of registered enhanced fan-out consumers")

// consumerWait bounds how long registration waits for the consumer to
// become ACTIVE (AWS: a few seconds) or for a transient error to clear.
const consumerWait = 3 * time.Minute

// registerConsumer returns the ARN of the stream's ACTIVE consumer named
// cfg.ConsumerName, registering it when missing. Replicas share it: one
// registers, the others find it (a ResourceInUseException from a
// concurrent registration just means it exists).
func (s *Stream) registerConsumer(ctx context.Context, streamARN string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, consumerWait)
	defer cancel()
	status, full := types.ConsumerStatus(""), 0
	for attempt := 1; ; attempt++ {
		arn, st, err := s.describeConsumer(ctx, streamARN)
		if err == nil && st == types.ConsumerStatusActive {
			s.log.Info().Str("consumer_name", s.cfg.ConsumerName).Str("consumer_arn", arn).Msg("enhanced fan-out consumer active")
			return arn, nil
		}
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			if err = s.register(ctx, streamARN, &full); errors.Is(err, ErrConsumerLimit) {
				return "", err
			}
		case err == nil && st != status:
			// CREATING, or DELETING before a registration of the same name.
			s.log.Info().Str("consumer_name", s.cfg.ConsumerName).Str("status", string(st)).Msg("waiting for the enhanced fan-out consumer to become ACTIVE")
			status = st
		}
		if err != nil && !retry.AWS(ctx, err) {
			return "", err
		}
		if err != nil && (attempt == 1 || attempt%logEvery == 0) {
			s.log.Warn().Err(err).Int("attempts", attempt).Msg("registering the enhanced fan-out consumer failed; retrying")
		}
		if backoff.Sleep(ctx, backoff.Delay(attempt, retryMin, 2*time.Second)) != nil {
			if err == nil {
				err = fmt.Errorf("status %s", status)
			}
			return "", fmt.Errorf("source.kinesis.consumer_name: enhanced fan-out consumer %s of stream %s did not become ACTIVE: %w (last: %w)", s.cfg.ConsumerName, s.cfg.Stream, ctx.Err(), err)
		}
	}
}

func (s *Stream) describeConsumer(ctx context.Context, streamARN string) (string, types.ConsumerStatus, error) {
	out, err := s.clients.Kinesis.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(s.cfg.ConsumerName)})
	if err != nil {
		return "", "", fmt.Errorf("describing enhanced fan-out consumer %s of stream %s (Kinesis DescribeStreamConsumer): %w", s.cfg.ConsumerName, s.cfg.Stream, err)
	}
	return aws.ToString(out.ConsumerDescription.ConsumerARN), out.ConsumerDescription.ConsumerStatus, nil
}

// limitRepeats is how many LimitExceededExceptions in a row, with the
// stream at ConsumerLimit and none of its consumers CREATING, make the
// limit final: Kinesis answers the same exception while 5 consumers are
// CREATING or the account's 5 registrations per second are spent, which
// pass, and On-demand Advantage streams allow more than 20.
const limitRepeats = 2

// register registers the consumer. *full counts the LimitExceededExceptions
// in a row that the consumer limit explains; at limitRepeats the error
// wraps ErrConsumerLimit and names the registered consumers.
func (s *Stream) register(ctx context.Context, streamARN string, full *int) error {
	_, err := s.clients.Kinesis.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(s.cfg.ConsumerName)},
		func(o *kinesis.Options) { o.RetryMaxAttempts = 1 }) // the caller decides what to retry
	var inUse *types.ResourceInUseException
	var limit *types.LimitExceededException
	switch {
	case err == nil, errors.As(err, &inUse): // registered now, or by another replica
		s.log.Info().Str("consumer_name", s.cfg.ConsumerName).Bool("by_another_replica", err != nil).Msg("enhanced fan-out consumer registered")
		return nil
	case errors.As(err, &limit):
		names, creating, lerr := s.consumers(ctx, streamARN)
		if lerr != nil || len(names) < ConsumerLimit || creating > 0 {
			*full = 0
			break
		}
		if *full++; *full >= limitRepeats {
			return fmt.Errorf("source.kinesis.consumer_name: cannot register enhanced fan-out consumer %s on stream %s: %w: %d consumers are registered (%s) and Kinesis allows %d per stream (%v); deregister one that is no longer used (aws kinesis deregister-stream-consumer --stream-arn %s --consumer-name NAME) or set source.kinesis.enhanced_fan_out to false to poll instead",
				s.cfg.ConsumerName, s.cfg.Stream, ErrConsumerLimit, len(names), strings.Join(names, ", "), ConsumerLimit, err, streamARN)
		}
	}
	return fmt.Errorf("registering enhanced fan-out consumer %s on stream %s (Kinesis RegisterStreamConsumer): %w", s.cfg.ConsumerName, s.cfg.Stream, err)
}

// consumers lists the names of the stream's registered consumers and
// how many of them are CREATING.
func (s *Stream) consumers(ctx context.Context, streamARN string) (names []string, creating int, err error) {
	p := kinesis.NewListStreamConsumersPaginator(s.clients.Kinesis, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("listing consumers of stream %s (Kinesis ListStreamConsumers): %w", s.cfg.Stream, err)
		}
		for _, c := range page.Consumers {
			names = append(names, aws.ToString(c.ConsumerName))
			if c.ConsumerStatus == types.ConsumerStatusCreating {
				creating++
			}
		}
	}
	return names, creating, nil
}

// subscribeTarget is the X-Amz-Target of SubscribeToShard.
const subscribeTarget = "Kinesis_20131202.SubscribeToShard"

// subscriptionIdleTimeout ends a subscription that sends nothing for this
// long, so the KCL resubscribes from its continuation. Kinesis sends events
// without records while a shard is idle; the Java KCL likewise restarts a
// subscription silent for 35 s.
const subscriptionIdleTimeout = 35 * time.Second

// fanOutClient is the Kinesis client for an EFO worker: the same client
// except that SubscribeToShard is not cut by the HTTP client's overall
// timeout (internal/assumerole sets 30 s, which would end every 5-minute
// subscription after 30 s), is bounded instead by a 30 s wait for the
// response headers, and is ended when silent for idle.
//
// It also gives each event-stream message a decoder of its own: the SDK's
// awsJson protocol (smithy-go v1.28.8) decodes every stream of a client
// with one shared codec, whose buffer and lazily built decoder the
// subscriptions of different shards write concurrently (the race detector
// reports it; the buffer happens to stay empty, so no event was seen
// garbled).
func fanOutClient(kc *kinesis.Client, idle time.Duration) *kinesis.Client {
	return kinesis.New(kc.Options(), func(o *kinesis.Options) {
		o.HTTPClient = &subscribeHTTP{HTTPClient: o.HTTPClient, stream: streamingClient(o.HTTPClient), idle: idle}
		if _, ok := o.Protocol.(*awsjson.Protocol); ok {
			o.Protocol = ownCodecs{o.Protocol}
		}
	})
}

// ownCodecs is the client's protocol with a fresh codec for each
// event-stream message.
type ownCodecs struct{ smithyhttp.ClientProtocol }

func (ownCodecs) DeserializeEventMessage(schema *smithy.Schema, types *smithy.TypeRegistry, r io.Reader) (smithy.Deserializable, error) {
	return awsjson.New11(schemas.Kinesis_20131202).DeserializeEventMessage(schema, types, r)
}

func (ownCodecs) DeserializeInitialResponse(schema *smithy.Schema, r io.Reader, out smithy.Deserializable) error {
	return awsjson.New11(schemas.Kinesis_20131202).DeserializeInitialResponse(schema, r, out)
}

// streamingClient is c without an overall request timeout.
func streamingClient(c kinesis.HTTPClient) kinesis.HTTPClient {
	switch c := c.(type) {
	case *awshttp.BuildableClient:
		return c.WithTimeout(0).WithTransportOptions(func(tr *http.Transport) { tr.ResponseHeaderTimeout = 30 * time.Second })
	case *http.Client:
		cp := *c
		cp.Timeout = 0
		return &cp
	}
	return c
}

type subscribeHTTP struct {
	kinesis.HTTPClient // every other operation
	stream             kinesis.HTTPClient
	idle               time.Duration
}

func (c *subscribeHTTP) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") != subscribeTarget {
		return c.HTTPClient.Do(r)
	}
	resp, err := c.stream.Do(r)
	if err == nil && resp.StatusCode == http.StatusOK {
		resp.Body = newIdleBody(resp.Body, c.idle)
	}
	return resp, err
}

// idleBody closes the body when no byte arrived for idle; the pending read
// then fails and the event stream ends with that error.
type idleBody struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
	once  sync.Once
}

func newIdleBody(b io.ReadCloser, idle time.Duration) *idleBody {
	ib := &idleBody{ReadCloser: b, idle: idle}
	ib.timer = time.AfterFunc(idle, func() { ib.Close() })
	return ib
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	var err error
	b.once.Do(func() {
		b.timer.Stop()
		err = b.ReadCloser.Close()
	})
	return err
}
