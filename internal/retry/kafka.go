package retry

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
)

// KafkaClass is what to do after a failed produce.
type KafkaClass int

const (
	// KafkaFatal errors cannot be mended by retrying or dead-lettering:
	// the configuration or the permissions are wrong, or the error is not
	// known. Stop and surface it.
	KafkaFatal KafkaClass = iota
	// KafkaTransient errors may succeed later: retry with backoff.
	KafkaTransient
	// KafkaRejected errors refuse one message (too large, invalid):
	// retrying it cannot succeed, so it is dead-lettered.
	KafkaRejected
)

func (c KafkaClass) String() string {
	switch c {
	case KafkaTransient:
		return "transient"
	case KafkaRejected:
		return "rejected"
	}
	return "fatal"
}

// Kafka classifies err from segmentio/kafka-go's Writer. Kafka protocol
// errors follow the protocol's "retriable" flag (kafka.Error.Temporary),
// except those that reject one message, which are KafkaRejected; network
// failures and a produce request's own timeout are transient, including a
// broker host that does not resolve (a restarting broker's advertised name
// can vanish for a while; the bootstrap brokers were resolved by the
// startup check). Anything else, including a ctx that has ended, is fatal.
func Kafka(ctx context.Context, err error) KafkaClass {
	if err == nil || ctx.Err() != nil {
		return KafkaFatal
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge, kafka.InvalidRecord, kafka.InvalidMessage,
			kafka.InvalidTopic, kafka.UnsupportedCompressionType:
			return KafkaRejected
		}
		if ke.Temporary() || ke.Timeout() {
			return KafkaTransient
		}
		return KafkaFatal
	}
	if network(ctx, err, true) {
		return KafkaTransient
	}
	return KafkaFatal
}
