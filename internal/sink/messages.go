package sink

import (
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/segmentio/kafka-go"
)

// messageOverhead approximates a record's framing in a Kafka batch.
const messageOverhead = 64

func messageSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value) + messageOverhead
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// addEvent turns an event into its message per the contract: key = the
// ordering key, value = the raw event, headers = event metadata. An event
// too large for Kafka becomes a dead letter instead.
func (k *Kafka) addEvent(msgs *pending, e *envelope.Event, b *Batch, a *arena) {
	m := kafka.Message{
		Topic:   k.router.topicMemo(e, &a.topic),
		Key:     a.bytes(e.Key),
		Value:   e.Raw,
		Headers: eventHeaders(a, e),
	}
	if size := messageSize(&m); size > k.cfg.MaxMessageBytes {
		b.Dead = append(b.Dead, DeadLetter{Format: e.Source, Kind: string(envelope.KindTooLarge),
			Reason: "event is larger than sink.kafka.max_message_bytes", Raw: e.Raw, Pos: e.Pos, Event: e})
		return
	}
	msgs.add(m, origin{event: e})
}

// deadMessage builds the DLQ message for d: value = the raw bytes (cut to
// fit max_message_bytes), key = the source position. When the value is
// not the whole record (the decoder kept a prefix of a too_large one, or
// it was cut here), the dlq-truncated-from header gives the record's
// original length.
func (k *Kafka) deadMessage(d *DeadLetter) kafka.Message {
	orig := max(int(d.Size), len(d.Raw))
	cutFrom := 0
	if orig > len(d.Raw) {
		cutFrom = orig
	}
	m := kafka.Message{Topic: k.cfg.DLQTopic, Key: []byte(d.Pos.String()), Value: d.Raw, Headers: deadHeaders(d, cutFrom)}
	if messageSize(&m) > k.cfg.MaxMessageBytes {
		m.Value = nil
		m.Headers = deadHeaders(d, orig)
		m.Value = d.Raw[:max(k.cfg.MaxMessageBytes-messageSize(&m), 0)]
	}
	return m
}
