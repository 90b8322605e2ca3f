package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	meta "github.com/segmentio/kafka-go/protocol/metadata"
)

// ErrTopicMissing is matched (errors.Is) by every *TopicMissingError.
var ErrTopicMissing = errors.New("kafka topic missing")

// TopicMissingError reports topics the brokers do not have and did not
// create. Retrying cannot help until someone creates them, so the sources
// stop on it instead of retrying (nothing after it is checkpointed).
type TopicMissingError struct {
	Topics []string
	// AutoCreate reports whether creation was requested
	// (sink.kafka.allow_auto_topic_creation).
	AutoCreate bool
}

func (e *TopicMissingError) Error() string {
	remedy := "create it (kafka-topics.sh --create --topic " + e.Topics[0] + ")"
	if len(e.Topics) > 1 {
		remedy = "create them (kafka-topics.sh --create --topic NAME, for each)"
	}
	if e.AutoCreate {
		remedy += " or enable auto.create.topics.enable on the brokers (eventrelay asked for auto-creation and the brokers refused)"
	} else {
		remedy += " or allow auto-creation (sink.kafka.allow_auto_topic_creation: true, with auto.create.topics.enable on the brokers)"
	}
	if len(e.Topics) > 1 {
		return fmt.Sprintf("kafka topics %s do not exist: %s", strings.Join(e.Topics, ", "), remedy)
	}
	return fmt.Sprintf("kafka topic %s does not exist: %s", e.Topics[0], remedy)
}

// Is makes errors.Is(err, ErrTopicMissing) hold.
func (e *TopicMissingError) Is(target error) bool { return target == ErrTopicMissing }

// StaticTopics are the topics known before any event arrives: the DLQ, the
// fallback and the topic itself when the template has no placeholder.
func (k *Kafka) StaticTopics() []string {
	ts := []string{k.cfg.DLQTopic, k.cfg.FallbackTopic}
	if k.router.static && len(k.router.parts) > 0 {
		ts = append(ts, k.router.parts[0].lit)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// CheckTopics looks up the static topics; with auto-creation allowed it asks
// the brokers to create the missing ones (as the Java producer does). It
// logs what exists, what was created and returns a *TopicMissingError for
// the rest. Topics from a template are checked when an event first needs
// them (see Deliver).
func (k *Kafka) CheckTopics(ctx context.Context, log zerolog.Logger) error {
	topics := k.StaticTopics()
	missing, err := k.missingTopics(ctx, topics, false)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if !slices.Contains(missing, t) {
			log.Info().Str("topic", t).Msg("kafka topic exists")
		}
	}
	if len(missing) > 0 && k.cfg.autoCreate() {
		still, err := k.missingTopics(ctx, missing, true)
		if err != nil {
			return err
		}
		for _, t := range missing {
			if !slices.Contains(still, t) {
				log.Info().Str("topic", t).Msg("kafka topic created (auto-creation)")
			}
		}
		missing = still
	}
	if !k.router.static {
		log.Info().Str("topic_template", k.cfg.Topic).Msg("templated kafka topics are checked when an event first needs them")
	}
	if len(missing) > 0 {
		return &TopicMissingError{Topics: missing, AutoCreate: k.cfg.autoCreate()}
	}
	return nil
}

// missingTopics asks the brokers for topics' metadata through a fresh
// transport (the writer's caches metadata for MetadataTTL, so it can still
// believe in a topic deleted, or miss one created, a moment ago) and
// returns those they report unknown. With create it requests
// auto-creation.
func (k *Kafka) missingTopics(ctx context.Context, topics []string, create bool) ([]string, error) {
	wt := k.tr
	tr := &kafka.Transport{ClientID: wt.ClientID, TLS: wt.TLS, SASL: wt.SASL, DialTimeout: wt.DialTimeout}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := tr.RoundTrip(ctx, k.w.Addr, &meta.Request{TopicNames: topics, AllowAutoTopicCreation: create})
	if err != nil {
		return nil, fmt.Errorf("looking up kafka topics %s: %w", strings.Join(topics, ", "), err)
	}
	var missing []string
	for _, t := range res.(*meta.Response).Topics {
		switch code := kafka.Error(t.ErrorCode); code {
		case 0, kafka.LeaderNotAvailable: // LeaderNotAvailable: just created, electing a leader
		case kafka.UnknownTopicOrPartition:
			missing = append(missing, t.Name)
		default:
			return nil, fmt.Errorf("looking up kafka topic %s: %w", t.Name, code)
		}
	}
	return missing, nil
}

// confirmMissing is called when a write failed with UnknownTopicOrPartition.
// It asks the brokers (requesting creation when allowed) whether the
// topics of msgs exist; a confirmed absence becomes a *TopicMissingError,
// anything else (the topic exists after all, or is being created) is a
// transient failure to retry.
func (k *Kafka) confirmMissing(ctx context.Context, msgs []kafka.Message) error {
	var topics []string
	for _, m := range msgs {
		if !slices.Contains(topics, m.Topic) {
			topics = append(topics, m.Topic)
		}
	}
	missing, err := k.missingTopics(ctx, topics, k.cfg.autoCreate())
	if err != nil || len(missing) == 0 {
		return nil
	}
	k.m.topicsMissing.Inc()
	return &TopicMissingError{Topics: missing, AutoCreate: k.cfg.autoCreate()}
}
