package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// FanOut is a Kinesis endpoint for enhanced fan-out (EFO) tests.
//
// kinesis-local's SubscribeToShard answers without the "initial-response"
// event aws-sdk-go-v2 requires, so FanOut serves SubscribeToShard itself,
// speaking Kinesis's event-stream protocol (encoded with the SDK's own
// eventstream encoder), and passes every other operation through to its
// upstream unchanged. That includes consumer registration: kinesis-local
// implements RegisterStreamConsumer, DescribeStreamConsumer,
// ListStreamConsumers and DeregisterStreamConsumer as AWS does (CREATING,
// then ACTIVE; ResourceInUseException for a name already registered;
// LimitExceededException past 20 consumers per stream, or while 5 are
// CREATING).
//
// A subscription reads the emulator's shard with GetShardIterator and
// GetRecords behind the scenes, so records, sequence numbers and resharding
// are the emulator's: the last event of a closed shard has no
// ContinuationSequenceNumber and lists the child shards. As on AWS, a
// subscription ends after SubscriptionDuration (5 minutes) and the client
// must subscribe again from its ContinuationSequenceNumber. Within
// TakeoverWindow (5 s) of a consumer's last successful SubscribeToShard to
// a shard, another fails with ResourceInUseException; a later one takes
// over, and a subscription still live ends with a ResourceInUseException
// event.
//
// Over plain http the SDK sends SubscribeToShard as HTTP/1.1 (it requires
// HTTP/2 only for bidirectional streams) and reads the chunked response as
// it arrives, so no TLS or h2c is needed.
type FanOut struct {
	URL string

	opts     FanOutOptions
	kc       *kinesis.Client // the emulator itself, not the signing proxy
	lookup   func(akid string) (Issued, bool)
	upstream *httputil.ReverseProxy

	mu       sync.Mutex
	live     map[subKey]*subscription
	last     map[subKey]time.Time // the last successful SubscribeToShard
	subs     []*subscription
	refused  int
	rejected []string
}

// FanOutOptions configure a FanOut. Zero fields take the defaults given.
type FanOutOptions struct {
	// SubscriptionDuration is how long a subscription lasts. Default 5m, as
	// on AWS; tests compress it to seconds to exercise resubscription.
	SubscriptionDuration time.Duration
	// TakeoverWindow: within it of a successful SubscribeToShard, another
	// for the same consumer and shard fails with ResourceInUseException.
	// Default 1/60 of SubscriptionDuration (AWS: 5 s of 5 minutes).
	TakeoverWindow time.Duration
	// PollInterval is how often the emulator's shard is read while the
	// subscription is caught up: it is the push latency. Default 50ms.
	PollInterval time.Duration
	// Heartbeat is how often an event without records is sent while
	// nothing arrives, as Kinesis sends them (with a continuation that
	// records the position). AWS does not document the cadence; the Java
	// KCL takes a subscription silent for 35 s as broken. Default 5s.
	Heartbeat time.Duration
	// MaxEventBytes caps the record data of one event; a larger read is
	// sent as several events. Default 1 MiB.
	MaxEventBytes int
}

func (o FanOutOptions) withDefaults() FanOutOptions {
	if o.SubscriptionDuration <= 0 {
		o.SubscriptionDuration = 5 * time.Minute
	}
	if o.TakeoverWindow <= 0 {
		o.TakeoverWindow = o.SubscriptionDuration / 60
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 50 * time.Millisecond
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = 1 << 20
	}
	return o
}

// Subscription is one successful SubscribeToShard call as FanOut served it.
type Subscription struct {
	ConsumerARN string
	ShardID     string
	// StartingPosition as requested: "TRIM_HORIZON", "LATEST",
	// "AT_TIMESTAMP <RFC 3339>", "AFTER_SEQUENCE_NUMBER <seq>", ...
	StartingPosition string
	Started, Ended   time.Time // Ended is zero while it lasts
	// End is why it ended: EndExpired, EndShardEnd, EndTakenOver,
	// EndClientGone, or "error: ..." (sent as an InternalFailureException).
	End     string
	Events  int // SubscribeToShardEvents sent, the initial response not counted
	Records int
	// Continuation is the last ContinuationSequenceNumber sent ("" at
	// shard end or before the first event).
	Continuation string
}

// Why a subscription ended.
const (
	EndExpired    = "expired"
	EndShardEnd   = "shard end"
	EndTakenOver  = "taken over"
	EndClientGone = "client gone"
)

type subKey struct{ consumer, shard string }

type subscription struct {
	Subscription
	takeover chan struct{} // closed when a newer subscription takes over
}

// NewFanOut starts a FanOut passing requests other than SubscribeToShard to
// upstream (a SigningProxy or the emulator) and reading records from
// emulator (kinesis-local's own URL). With lookup set, SubscribeToShard
// must be SigV4-signed with credentials lookup knows, as SigningProxy
// requires of the rest.
func NewFanOut(t testing.TB, upstream, emulator string, lookup func(akid string) (Issued, bool), o FanOutOptions) *FanOut {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	f := &FanOut{
		opts:     o.withDefaults(),
		lookup:   lookup,
		upstream: httputil.NewSingleHostReverseProxy(u),
		live:     map[subKey]*subscription{},
		last:     map[subKey]time.Time{},
		kc: kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(emulator),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDFANOUT", "fan-out", "")}),
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	// Closing the server waits for the handlers: end the subscriptions first.
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	f.URL = srv.URL
	return f
}

// StartFanOut puts a FanOut in front of the stack's Kinesis (the signing
// proxy stays behind it for every other operation) and points KinesisURL
// and Env at it. Call it before building clients from KinesisURL.
func (s *Stack) StartFanOut(t testing.TB, o FanOutOptions) *FanOut {
	t.Helper()
	f := NewFanOut(t, s.KinesisURL, s.Kinesis.URL, s.STS.Lookup, o)
	s.KinesisURL, s.FanOut = f.URL, f
	t.Cleanup(func() {
		if r := f.Rejected(); len(r) > 0 {
			t.Errorf("SubscribeToShard requests with bad signatures: %v", r[:min(3, len(r))])
		}
	})
	return f
}

// Subscriptions returns every subscription served so far, in the order
// they started.
func (f *FanOut) Subscriptions() []Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Subscription, len(f.subs))
	for i, s := range f.subs {
		out[i] = s.Subscription
	}
	return out
}

// Refused is how many SubscribeToShard calls failed with
// ResourceInUseException because they came within TakeoverWindow of the
// previous subscription of their consumer to their shard.
func (f *FanOut) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// Rejected returns the reasons SubscribeToShard requests were refused for
// their signature.
func (f *FanOut) Rejected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rejected...)
}

const subscribeTarget = "Kinesis_20131202.SubscribeToShard"

func (f *FanOut) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != subscribeTarget {
		f.upstream.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	if f.lookup != nil {
		if akid, err := VerifySigV4(r, body, f.lookup); err != nil {
			f.mu.Lock()
			f.rejected = append(f.rejected, fmt.Sprintf("%s: %v", akid, err))
			f.mu.Unlock()
			apiError(w, http.StatusBadRequest, "ExpiredTokenException", err.Error())
			return
		}
	}
	var in subscribeInput
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&in); err != nil || in.ConsumerARN == "" || in.ShardID == "" {
		apiError(w, http.StatusBadRequest, "InvalidArgumentException", "SubscribeToShard needs ConsumerARN, ShardId and StartingPosition")
		return
	}
	f.subscribe(w, r, in)
}

// subscribeInput is SubscribeToShard's request body (awsJson 1.1).
type subscribeInput struct {
	ConsumerARN      string `json:"ConsumerARN"`
	ShardID          string `json:"ShardId"`
	StartingPosition struct {
		Type           string   `json:"Type"`
		SequenceNumber string   `json:"SequenceNumber"`
		Timestamp      *float64 `json:"Timestamp"` // epoch seconds
	} `json:"StartingPosition"`
}

func (in subscribeInput) position() string {
	p := in.StartingPosition
	switch {
	case p.SequenceNumber != "":
		return p.Type + " " + p.SequenceNumber
	case p.Timestamp != nil:
		return p.Type + " " + epoch(*p.Timestamp).UTC().Format(time.RFC3339Nano)
	}
	return p.Type
}

func epoch(sec float64) time.Time {
	return time.UnixMilli(int64(sec * 1000))
}

// apiError answers as Kinesis does before a stream starts.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	w.Write(b)
}

// start records a subscription about to be served, applying Kinesis's
// rule: within TakeoverWindow of the last successful SubscribeToShard of
// the consumer to the shard, another fails; later it takes over the
// subscription still live, if any.
func (f *FanOut) start(in subscribeInput) (*subscription, error) {
	k := subKey{in.ConsumerARN, in.ShardID}
	f.mu.Lock()
	defer f.mu.Unlock()
	if last, ok := f.last[k]; ok && time.Since(last) < f.opts.TakeoverWindow {
		f.refused++
		return nil, fmt.Errorf("consumer %s subscribed to shard %s %s ago; retry after %s",
			in.ConsumerARN, in.ShardID, time.Since(last).Round(time.Millisecond), f.opts.TakeoverWindow)
	}
	if prev := f.live[k]; prev != nil {
		close(prev.takeover)
		delete(f.live, k)
	}
	f.last[k] = time.Now()
	s := &subscription{Subscription: Subscription{ConsumerARN: in.ConsumerARN, ShardID: in.ShardID,
		StartingPosition: in.position(), Started: time.Now()}, takeover: make(chan struct{})}
	f.live[k] = s
	f.subs = append(f.subs, s)
	return s, nil
}

// finish records how s ended.
func (f *FanOut) finish(s *subscription, end string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Ended, s.End = time.Now(), end
	k := subKey{s.ConsumerARN, s.ShardID}
	if f.live[k] == s {
		delete(f.live, k)
	}
}

// sent records an event sent on s.
func (f *FanOut) sent(s *subscription, records int, cont *string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Events++
	s.Records += records
	s.Continuation = aws.ToString(cont)
}

// streamName is the name in a stream or consumer ARN
// (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME[/consumer/...]).
func streamName(arn string) string {
	_, rest, _ := strings.Cut(arn, ":stream/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}
