package sink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// TestTopicsAutoCreated: against brokers with auto.create.topics.enable
// (Kafka's default) and no topics at all, the startup check creates the
// static topics and delivery creates the templated one; kcat reads every
// event back. Before allow_auto_topic_creation, every produce failed with
// Unknown Topic Or Partition and was retried forever.
func TestTopicsAutoCreated(t *testing.T) {
	kc := kafkatest.Start(t, 1, 3)
	k, _ := newTestKafka(t, kc.Addrs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.CheckTopics(ctx, zerolog.Nop()); err != nil {
		t.Fatalf("CheckTopics: %v", err)
	}
	evs := testEvents(200, 7, 10)
	if err := k.Deliver(ctx, &Batch{Events: evs}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome"); len(got) != len(evs) {
		t.Errorf("kcat read %d events from the auto-created topic, want %d", len(got), len(evs))
	}
	if missing, err := k.missingTopics(ctx, []string{"events.dlq", "events"}, false); err != nil || len(missing) != 0 {
		t.Errorf("static topics after CheckTopics: missing %v, err %v", missing, err)
	}
}

// TestTopicsMissing: when a topic does not exist and is not created —
// the brokers refuse auto-creation, or allow_auto_topic_creation is false —
// the startup check and the first delivery to a templated topic fail at
// once with an error that names the topic and both remedies, instead of
// retrying forever.
func TestTopicsMissing(t *testing.T) {
	off := false
	cases := []struct {
		name       string
		strict     bool
		autoCreate *bool
		remedy     string
	}{
		{"brokers refuse auto-creation", true, nil, "auto.create.topics.enable"},
		{"client does not ask", false, &off, "sink.kafka.allow_auto_topic_creation: true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var kc *kafkatest.Cluster
			if tc.strict {
				kc = kafkatest.StartStrict(t, 1, 3, "events.dlq")
			} else {
				kc = kafkatest.Start(t, 1, 3, "events.dlq")
			}
			k, _ := newTestKafka(t, kc.Addrs, func(c *KafkaConfig) { c.AllowAutoTopicCreation = tc.autoCreate })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			err := k.CheckTopics(ctx, zerolog.Nop())
			var tm *TopicMissingError
			if !errors.As(err, &tm) || len(tm.Topics) != 1 || tm.Topics[0] != "events" {
				t.Fatalf("CheckTopics = %v, want the fallback topic \"events\" missing", err)
			}
			for _, want := range []string{"kafka topic events does not exist", "kafka-topics.sh --create --topic events", tc.remedy} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}

			err = k.Deliver(ctx, &Batch{Events: testEvents(5, 2, 1)})
			if !errors.Is(err, ErrTopicMissing) || !strings.Contains(err.Error(), "events.onewelcome") {
				t.Fatalf("Deliver to a missing templated topic = %v, want ErrTopicMissing naming events.onewelcome", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Deliver only returned when the test's deadline passed")
			}
			if n := testutil.ToFloat64(k.m.topicsMissing); n != 1 {
				t.Errorf("eventrelay_sink_topic_missing_total = %v, want 1", n)
			}
		})
	}
}

// TestCheckSASLAgainstPlainBrokers: SASL configured against brokers whose
// listener has none used to report only "unexpected EOF"; the startup check
// now says the SASL handshake failed, with the mechanism and the brokers.
func TestCheckSASLAgainstPlainBrokers(t *testing.T) {
	kc := kafkatest.Start(t, 1, 1, "events.dlq")
	k, _ := newTestKafka(t, kc.Addrs, func(c *KafkaConfig) {
		c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := k.Check(ctx)
	if err == nil || !errors.Is(err, ErrSASLHandshake) {
		t.Fatalf("Check = %v, want ErrSASLHandshake", err)
	}
	for _, want := range []string{"SASL handshake failed", "SCRAM-SHA-256", kc.Addrs[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %q does not say %q", err, want)
		}
	}
}
