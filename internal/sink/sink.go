package sink

import (
	"context"

	"github.com/eventrelay/eventrelay/internal/envelope"
)

// Sink delivers batches. Deliver returns nil only when every event and dead
// letter of the batch is durably acknowledged; it may be called from several
// goroutines at once (one per shard or object), and keeps each caller's
// per-key order.
type Sink interface {
	Deliver(ctx context.Context, b *Batch) error
	Close() error
}

// WriteFailures is implemented by sinks that say when a batch's bytes are
// free once Deliver returned: their count of failed writes. A sink reads
// the events' Raw (and the dead letters') only until Deliver returns,
// except after a failed write, which may still read them later (kafka-go
// goes on writing a batch whose caller stopped waiting). So bytes handed
// over while the count did not change may be reused once Deliver returned
// nil for them (envelope.ChunkPool); a sink that does not implement it
// gets bytes that are never reused.
type WriteFailures interface {
	WriteFailures() uint64
}

// Batch is what a source hands over in one acknowledgement unit.
type Batch struct {
	Events []envelope.Event
	Dead   []DeadLetter
	// Retried is set by Deliver when some message was written more than
	// once: a message of a later batch delivered meanwhile may then sit
	// before this batch's final copies (see pipeline).
	Retried bool
}

// Len is the number of messages the batch produces.
func (b *Batch) Len() int { return len(b.Events) + len(b.Dead) }

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Events)
	b.Events = b.Events[:0]
	clear(b.Dead)
	b.Dead = b.Dead[:0]
	b.Retried = false
}

// DeadLetter is input that cannot become a normal message: a record that
// failed to decode, or an event Kafka permanently rejected. It goes to the
// dead-letter topic with its raw bytes, position and reason.
type DeadLetter struct {
	Format envelope.Format
	Kind   string // an envelope.ErrorKind, or "rejected" for Kafka rejections
	Reason string
	Raw    []byte
	// Size is the record's length when Raw holds only a prefix of it (an
	// envelope.Error's Size); 0 when Raw is whole.
	Size int64
	Pos  envelope.Position
	// Event is set when a decoded event was rejected by Kafka; its headers
	// are kept on the dead letter.
	Event *envelope.Event
}

// KindRejected marks an event Kafka refused permanently.
const KindRejected = "rejected"

// FromDecodeError turns a decode error into a dead letter.
func FromDecodeError(e *envelope.Error) DeadLetter {
	return DeadLetter{Format: e.Format, Kind: string(e.Kind), Reason: e.Reason, Raw: e.Raw, Size: e.Size, Pos: e.Pos}
}
