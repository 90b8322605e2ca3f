package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

// Deliver hands b to the sink until it is acknowledged. Sinks retry
// transient failures themselves; an error from the sink that is not the
// end of ctx (for example a Kafka authorization failure) is logged and
// retried here with backoff up to maxBackoff, so a source never skips a
// batch. It returns an error when ctx ends or when a topic is missing and
// cannot be created (sink.ErrTopicMissing: no retry can help until an
// operator acts, so the source must stop); then nothing must be
// checkpointed.
func Deliver(ctx context.Context, s sink.Sink, b *sink.Batch, log zerolog.Logger, maxBackoff time.Duration) error {
	delay := 500 * time.Millisecond
	for {
		err := s.Deliver(ctx, b)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("batch of %d messages not delivered: %w", b.Len(), ctx.Err())
		}
		if errors.Is(err, sink.ErrTopicMissing) {
			return fmt.Errorf("batch of %d messages not delivered: %w", b.Len(), err)
		}
		b.Retried = true
		log.Error().Err(err).Int("messages", b.Len()).Stringer("retry_in", delay).Msg("sink refused the batch; retrying")
		if err := backoff.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("batch of %d messages not delivered: %w", b.Len(), err)
		}
		delay = min(delay*2, maxBackoff)
	}
}
