package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/retry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
)

// Kafka is the Kafka sink: acks=all, synchronous per batch, murmur2 keys
// (the Java client's partitioning), retries with backoff until delivered.
type Kafka struct {
	cfg KafkaConfig
	w   *kafka.Writer
	// tr is the writer's transport, under its metaMemo.
	tr     *kafka.Transport
	router *Router
	log    zerolog.Logger
	m      *metrics
	sleep  func(ctx context.Context, d time.Duration) error
	// failures counts writes that returned an error (WriteFailures).
	failures atomic.Uint64
	// spare holds the arenas and pending lists of deliveries that ended
	// with no write failing anywhere meanwhile, for the next deliveries:
	// kafka-go has then let go of every message built in them.
	spare sync.Pool
}

// scratch is what one delivery builds its messages in.
type scratch struct {
	arena arena
	msgs  pending
}

// WriteFailures implements WriteFailures: kafka-go may still encode and
// send a batch whose WriteMessages returned an error (a cancelled context
// leaves the batch queued on its connection).
func (k *Kafka) WriteFailures() uint64 { return k.failures.Load() }

// NewKafka builds the sink. reg may be nil (no metrics). It does not
// connect; use Check to verify the brokers are reachable.
func NewKafka(cfg KafkaConfig, log zerolog.Logger, reg prometheus.Registerer) (*Kafka, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	router, err := NewRouter(cfg.Topic, cfg.FallbackTopic)
	if err != nil {
		return nil, fmt.Errorf("sink.kafka.topic: %w", err)
	}
	comp, err := codec(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("sink.kafka.compression: %w", err)
	}
	useSmallLZ4Blocks()
	tlsCfg, err := cfg.TLS.build()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.SASL.build()
	if err != nil {
		return nil, err
	}
	tr := &kafka.Transport{
		ClientID: cfg.ClientID, TLS: tlsCfg, SASL: mech,
		DialTimeout: 5 * time.Second, MetadataTTL: 30 * time.Second,
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    cfg.BatchSize,
		BatchBytes:   cfg.BatchBytes,
		BatchTimeout: cfg.Linger,
		// The writer asks for auto-creation in its metadata requests.
		AllowAutoTopicCreation: cfg.autoCreate(),
		Compression:            comp,
		WriteTimeout:           cfg.WriteTimeout,
		// One attempt per write: Deliver retries (observing ctx, with
		// backoff), and reports a stalled broker after one WriteTimeout
		// rather than after kafka-go's own retries of it.
		MaxAttempts:     1,
		WriteBackoffMin: cfg.RetryBackoffMin,
		WriteBackoffMax: cfg.RetryBackoffMin * 4,
		Transport:       newMetaMemo(tr),
	}
	return &Kafka{cfg: cfg, w: w, tr: tr, router: router, log: log, m: newMetrics(reg), sleep: backoff.Sleep}, nil
}

// ErrSASLHandshake is returned (wrapped) by Check when SASL is configured
// but the brokers answer without it: their listener does not take SASL, so
// retrying does not help.
var ErrSASLHandshake = errors.New("kafka SASL handshake failed")

// Check asks the brokers for the DLQ topic's metadata, proving they are
// reachable and the credentials work.
func (k *Kafka) Check(ctx context.Context) error {
	err := k.metadata(ctx, k.tr)
	if err == nil || k.cfg.SASL.Mechanism == "" {
		return err
	}
	// A listener without SASL drops the connection on the SASL handshake,
	// which kafka-go reports as a bare "unexpected EOF": ask again without
	// SASL to tell that apart from brokers that are down.
	t := k.tr
	plain := &kafka.Transport{ClientID: t.ClientID, TLS: t.TLS, DialTimeout: t.DialTimeout, MetadataTTL: t.MetadataTTL}
	defer plain.CloseIdleConnections()
	if k.metadata(ctx, plain) == nil {
		return fmt.Errorf("%w with kafka brokers %v (sink.kafka.sasl.mechanism %s): they answer without SASL, so this listener does not take it; "+
			"use the brokers' SASL listener or unset sink.kafka.sasl (%v)", ErrSASLHandshake, k.cfg.Brokers, strings.ToUpper(k.cfg.SASL.Mechanism), err)
	}
	return err
}

// metadata asks the brokers through transport for the DLQ topic.
func (k *Kafka) metadata(ctx context.Context, transport kafka.RoundTripper) error {
	client := &kafka.Client{Addr: k.w.Addr, Transport: transport, Timeout: 10 * time.Second}
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.cfg.DLQTopic}})
	if err != nil {
		return fmt.Errorf("reaching kafka brokers %v: %w", k.cfg.Brokers, err)
	}
	if len(res.Brokers) == 0 {
		return fmt.Errorf("kafka brokers %v returned no brokers", k.cfg.Brokers)
	}
	return nil
}

// Close flushes and closes the writer.
// It waits at most WriteTimeout: with the brokers stalled the writer would
// wait for them forever, and nothing unacknowledged is lost by leaving.
func (k *Kafka) Close() error {
	done := make(chan error, 1)
	go func() {
		err := k.w.Close()
		// The writer leaves its transport's connections and metadata
		// refresher running: a process that opens sinks again (tests, a
		// poller restarted in place) would gather them.
		k.tr.CloseIdleConnections()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(k.cfg.WriteTimeout):
		return fmt.Errorf("closing the kafka writer: no answer from %v within %s", k.cfg.Brokers, k.cfg.WriteTimeout)
	}
}

// pending are messages not yet acknowledged, with what each came from.
// The messages are kept in one slice, so that a run of them is written as
// is (kafka-go copies each message into its partition batch anyway).
type pending struct {
	msgs []kafka.Message
	from []origin // from[i] is msgs[i]'s
}

// origin is what a pending message came from.
type origin struct {
	event *envelope.Event // nil for dead letters
	alone bool            // being retried on its own after a permanent error
}

// reset empties p for n messages, growing it where it is too small.
func (p *pending) reset(n int) {
	if cap(p.msgs) < n {
		p.msgs, p.from = make([]kafka.Message, 0, n), make([]origin, 0, n)
	}
	p.msgs, p.from = p.msgs[:0], p.from[:0]
}

func (p *pending) add(m kafka.Message, o origin) {
	p.msgs = append(p.msgs, m)
	p.from = append(p.from, o)
}

func (p *pending) addAll(q pending) {
	p.msgs = append(p.msgs, q.msgs...)
	p.from = append(p.from, q.from...)
}

func (p pending) len() int { return len(p.msgs) }

// cut splits p after its first n messages.
func (p pending) cut(n int) (head, tail pending) {
	return pending{p.msgs[:n:n], p.from[:n:n]}, pending{p.msgs[n:], p.from[n:]}
}

// Deliver writes the batch and returns when every message is acknowledged.
func (k *Kafka) Deliver(ctx context.Context, b *Batch) error {
	start := time.Now()
	failures := k.failures.Load()
	sc, _ := k.spare.Get().(*scratch)
	if sc == nil {
		sc = &scratch{}
	}
	var first *envelope.Event
	if len(b.Events) > 0 {
		first = &b.Events[0]
	}
	sc.arena.reset(len(b.Events), first)
	sc.msgs.reset(b.Len())
	a, msgs := &sc.arena, sc.msgs
	for i := range b.Events {
		k.addEvent(&msgs, &b.Events[i], b, a)
	}
	for i := range b.Dead {
		msgs.add(k.deadMessage(&b.Dead[i]), origin{})
	}
	built := msgs
	defer func() {
		// Only when no write failed meanwhile, here or in another delivery
		// (kafka-go may still read a batch whose write failed). The
		// messages are cleared so the spare keeps no event bytes alive.
		if k.failures.Load() == failures {
			clear(built.msgs)
			clear(built.from)
			sc.msgs = built
			k.spare.Put(sc)
		}
	}()
	for attempt := 0; msgs.len() > 0; attempt++ {
		if attempt > 0 {
			b.Retried = true
			k.m.retries.Inc()
			if err := k.sleep(ctx, backoff.Delay(attempt, k.cfg.RetryBackoffMin, k.cfg.RetryBackoffMax)); err != nil {
				return fmt.Errorf("delivering %d messages: %w", msgs.len(), err)
			}
		}
		var err error
		if msgs, err = k.attempt(ctx, msgs, b); err != nil {
			return err
		}
	}
	k.m.acked(b)
	k.m.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// topicKey identifies a message stream whose order must be kept.
type topicKey struct{ topic, key string }

// attempt writes msgs once and returns those still to be sent, in order.
// Messages marked alone (a permanent error hit their batch) are written on
// their own, so the rejection is pinned on the right message. A message
// after a failed one with the same topic and key is re-sent too, so the
// last copy of each key's messages in Kafka is in order.
func (k *Kafka) attempt(ctx context.Context, msgs pending, b *Batch) (pending, error) {
	var retry pending
	blocked := map[topicKey]bool{}
	for msgs.len() > 0 {
		n := 1
		for !msgs.from[0].alone && n < msgs.len() && !msgs.from[n].alone {
			n++
		}
		var seg pending
		seg, msgs = msgs.cut(n)
		err := k.w.WriteMessages(ctx, seg.msgs...)
		if err != nil {
			k.failures.Add(1)
		}
		if err == nil && len(blocked) == 0 {
			continue
		}
		r, err := k.failed(ctx, seg, err, blocked, b)
		if err != nil {
			return pending{}, err
		}
		retry.addAll(r)
	}
	return retry, nil
}

// failed sorts the outcome of a write (err may be nil when only earlier
// failures block keys) into messages to retry, dead letters and fatal
// errors, as retry.Kafka classifies them: an error it does not know stops
// the delivery instead of being retried forever.
func (k *Kafka) failed(ctx context.Context, msgs pending, err error, blocked map[topicKey]bool, b *Batch) (pending, error) {
	if ctx.Err() != nil {
		return pending{}, fmt.Errorf("delivering %d messages: %w", msgs.len(), ctx.Err())
	}
	werrs := make(kafka.WriteErrors, msgs.len())
	if err != nil {
		k.m.produceErrs.Inc()
		if !errors.As(err, &werrs) || len(werrs) != msgs.len() {
			if retry.Kafka(ctx, err) != retry.KafkaTransient {
				return pending{}, fmt.Errorf("delivering %d messages to kafka: %w", msgs.len(), err)
			}
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				if err := k.confirmMissing(ctx, msgs.msgs); err != nil {
					return pending{}, err
				}
			}
			k.log.Warn().Str("error", summarize(err)).Int("messages", msgs.len()).Msg("kafka write failed, retrying")
			for _, m := range msgs.msgs {
				blocked[topicKey{m.Topic, string(m.Key)}] = true
			}
			return msgs, nil
		}
		k.log.Warn().Str("error", summarize(err)).Int("messages", msgs.len()).Msg("kafka write failed, retrying")
	}
	var again pending
	for i, m := range msgs.msgs {
		o, e := msgs.from[i], werrs[i]
		id := topicKey{m.Topic, string(m.Key)}
		class := retry.Kafka(ctx, e)
		switch {
		case e == nil && !blocked[id]:
			continue // acknowledged, and nothing before it with its key failed
		case e == nil:
		case errors.Is(e, kafka.UnknownTopicOrPartition):
			if err := k.confirmMissing(ctx, msgs.msgs[i:i+1]); err != nil {
				return pending{}, err
			}
		case class == retry.KafkaFatal:
			return pending{}, fmt.Errorf("delivering to topic %s: %w", m.Topic, e)
		case class == retry.KafkaRejected && o.alone:
			if o.event == nil {
				return pending{}, fmt.Errorf("dead-letter topic %s rejected a message: %w", m.Topic, e)
			}
			b.Dead = append(b.Dead, DeadLetter{Format: o.event.Source, Kind: KindRejected,
				Reason: "kafka rejected the event: " + e.Error(), Raw: o.event.Raw, Pos: o.event.Pos, Event: o.event})
			again.add(k.deadMessage(&b.Dead[len(b.Dead)-1]), origin{})
			continue
		case class == retry.KafkaRejected:
			o.alone = true
		}
		blocked[id] = true
		again.add(m, o)
	}
	return again, nil
}
