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

// eventHeaders appends the contract headers for e. All header values share
// one allocation.
func eventHeaders(dst []kafka.Header, e *envelope.Event) []kafka.Header {
	pos := e.Pos.String()
	buf := make([]byte, 0, len(e.ID)+len(e.Type)+len(e.Name)+len(e.Source)+len(e.Tenant)+len(e.Category)+len(pos)+32)
	var spans [8][2]int
	add := func(i int, s string) {
		start := len(buf)
		buf = append(buf, s...)
		spans[i] = [2]int{start, len(buf)}
	}
	add(0, e.ID)
	add(1, e.Type)
	add(2, string(e.Source))
	add(3, e.Tenant)
	add(4, e.Category)
	start := len(buf)
	buf = e.OccurredAt.UTC().AppendFormat(buf, envelope.TimeLayout)
	spans[5] = [2]int{start, len(buf)}
	add(6, pos)
	add(7, e.Name)
	names := [8]string{HeaderEventID, HeaderEventType, HeaderSource, HeaderTenant, HeaderCategory, HeaderOccurredAt, HeaderPosition, HeaderName}
	for i, n := range names {
		if spans[i][0] == spans[i][1] && (i == 3 || i == 4 || i == 7) {
			continue // tenant, category and name are omitted when empty
		}
		dst = append(dst, kafka.Header{Key: n, Value: buf[spans[i][0]:spans[i][1]:spans[i][1]]})
	}
	if e.Updated {
		dst = append(dst, kafka.Header{Key: HeaderUpdated, Value: []byte("true")})
	}
	return dst
}

// deadHeaders builds the headers of a dead letter.
func deadHeaders(d *DeadLetter, truncatedFrom int) []kafka.Header {
	var h []kafka.Header
	if d.Event != nil {
		h = eventHeaders(h, d.Event)
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
