package sink

import (
	"strconv"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/segmentio/kafka-go"
)

// Header names of the Kafka message contract (see README.md). They change
// only deliberately: downstream teams filter and trace on them.
const (
	HeaderEventID   = "event-id"
	HeaderEventType = "event-type"
	// HeaderName is the vendor's event name (Fluent Commerce "name", see
	// envelope.Event.Name); omitted when empty, so messages of the other
	// sources do not change.
	HeaderName       = "event-name"
	HeaderSource     = "event-source"
	HeaderTenant     = "event-tenant"
	HeaderCategory   = "event-category"
	HeaderOccurredAt = "event-occurred-at"
	HeaderPosition   = "source-position"
	// HeaderUpdated ("true") marks a re-delivery of an event whose content
	// changed under the same id; absent otherwise.
	HeaderUpdated = "event-updated"

	HeaderDLQKind      = "dlq-kind"
	HeaderDLQReason    = "dlq-reason"
	HeaderDLQFormat    = "dlq-format"
	HeaderDLQTruncated = "dlq-truncated-from"
)

// arena holds the keys and header values of one delivery's messages: two
// allocations per batch instead of several per event, and none once the
// sink reuses it (Kafka.spare). A slice handed out
// stays valid when a later append moves the arena (it keeps the old array).
type arena struct {
	hdrs  []kafka.Header
	buf   []byte
	topic topicMemo
}

// newArena sizes an arena for events like first (nil: a small one).
func newArena(events int, first *envelope.Event) *arena {
	a := &arena{}
	a.reset(events, first)
	return a
}

// reset empties a for events like first, growing it where it is too small.
// The bytes and headers handed out before must no longer be in use.
func (a *arena) reset(events int, first *envelope.Event) {
	per := 64
	if first != nil {
		per = len(first.ID) + len(first.Type) + len(first.Source) + len(first.Tenant) + len(first.Category) + len(first.Name) + len(first.Key) +
			len(envelope.TimeLayout) + len(first.Pos.Object) + len(first.Pos.Shard) + len(first.Pos.Sequence) + 24
	}
	if cap(a.hdrs) < 7*events {
		a.hdrs = make([]kafka.Header, 0, 7*events)
	}
	if cap(a.buf) < per*events+per {
		a.buf = make([]byte, 0, per*events+per)
	}
	// The headers point into buf and at constant names only: nothing
	// stale is kept alive.
	a.hdrs, a.buf, a.topic = a.hdrs[:0], a.buf[:0], topicMemo{}
}

// bytes copies s into the arena.
func (a *arena) bytes(s string) []byte {
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// eventHeaders returns the contract headers for e, built in a (nil: their
// own allocation).
func eventHeaders(a *arena, e *envelope.Event) []kafka.Header {
	if a == nil {
		a = newArena(1, e)
	}
	var spans [8][2]int
	add := func(i int, s string) {
		start := len(a.buf)
		a.buf = append(a.buf, s...)
		spans[i] = [2]int{start, len(a.buf)}
	}
	base := len(a.buf)
	add(0, e.ID)
	add(1, e.Type)
	add(2, string(e.Source))
	add(3, e.Tenant)
	add(4, e.Category)
	start := len(a.buf)
	a.buf = envelope.AppendTime(a.buf, e.OccurredAt)
	spans[5] = [2]int{start, len(a.buf)}
	start = len(a.buf)
	a.buf = e.Pos.Append(a.buf)
	spans[6] = [2]int{start, len(a.buf)}
	add(7, e.Name)
	vals := a.buf[base:len(a.buf):len(a.buf)] // fixed now, whatever later appends do
	first := len(a.hdrs)
	names := [8]string{HeaderEventID, HeaderEventType, HeaderSource, HeaderTenant, HeaderCategory, HeaderOccurredAt, HeaderPosition, HeaderName}
	for i, n := range names {
		if spans[i][0] == spans[i][1] && (i == 3 || i == 4 || i == 7) {
			continue // tenant, category and name are omitted when empty
		}
		from, to := spans[i][0]-base, spans[i][1]-base
		a.hdrs = append(a.hdrs, kafka.Header{Key: n, Value: vals[from:to:to]})
	}
	if e.Updated {
		a.hdrs = append(a.hdrs, kafka.Header{Key: HeaderUpdated, Value: []byte("true")})
	}
	return a.hdrs[first:len(a.hdrs):len(a.hdrs)]
}

// deadHeaders builds the headers of a dead letter.
func deadHeaders(d *DeadLetter, truncatedFrom int) []kafka.Header {
	var h []kafka.Header
	if d.Event != nil {
		h = append(h, eventHeaders(nil, d.Event)...)
	} else {
		h = append(h, kafka.Header{Key: HeaderPosition, Value: []byte(d.Pos.String())})
	}
	h = append(h,
		kafka.Header{Key: HeaderDLQKind, Value: []byte(d.Kind)},
		kafka.Header{Key: HeaderDLQReason, Value: []byte(d.Reason)},
		kafka.Header{Key: HeaderDLQFormat, Value: []byte(d.Format)},
	)
	if truncatedFrom > 0 {
		h = append(h, kafka.Header{Key: HeaderDLQTruncated, Value: strconv.AppendInt(nil, int64(truncatedFrom), 10)})
	}
	return h
}
