package envelope

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format names a vendor event format.
type Format string

// The supported formats. Each is also the value of Event.Source for the
// events it produces.
const (
	FormatAuto             Format = "auto"
	FormatOneWelcome       Format = "onewelcome"
	FormatFulfillmenttools Format = "fulfillmenttools"
	FormatInfobip          Format = "infobip"
	FormatFluent           Format = "fluent"
	FormatAkeneoLogs       Format = "akeneo-logs"
	FormatCloudEvents      Format = "cloudevents"
)

// Formats lists every concrete format, in the order the auto sniffer tries them.
var Formats = []Format{FormatOneWelcome, FormatFulfillmenttools, FormatInfobip, FormatFluent, FormatAkeneoLogs, FormatCloudEvents}

// ParseFormat checks a format name given by a user.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if f == FormatAuto {
		return f, nil
	}
	for _, known := range Formats {
		if f == known {
			return f, nil
		}
	}
	names := []string{string(FormatAuto)}
	for _, known := range Formats {
		names = append(names, string(known))
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Position says where an event or a bad record came from. Stream sources set
// Shard and Sequence; object sources set Object, Line and Offset. Index is the
// event's place inside a multi-event envelope (0 for single-event records).
type Position struct {
	Shard    string `json:"shard,omitempty"`
	Sequence string `json:"sequence,omitempty"`
	Object   string `json:"object,omitempty"`
	// Line is the 1-based line on which the record starts (0 when unknown).
	Line int64 `json:"line,omitempty"`
	// Offset is the byte offset of the event (or bad bytes) in the record or
	// in the decompressed object.
	Offset int64 `json:"offset"`
	Index  int   `json:"index"`
}

// String renders the position for logs and Kafka headers, e.g.
// "shardId-000000000001/4959...:2" or "2024-02-01/000.json.gz:17@2048#0".
func (p Position) String() string { return string(p.Append(make([]byte, 0, 64))) }

// Append appends the String form of p to dst.
func (p Position) Append(dst []byte) []byte {
	if p.Shard != "" || p.Sequence != "" {
		dst = append(dst, p.Shard...)
		dst = append(dst, '/')
		dst = append(dst, p.Sequence...)
	} else {
		dst = append(dst, p.Object...)
		if p.Line > 0 {
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, p.Line, 10)
		}
		dst = append(dst, '@')
		dst = strconv.AppendInt(dst, p.Offset, 10)
	}
	dst = append(dst, '#')
	return strconv.AppendInt(dst, int64(p.Index), 10)
}

// Event is one normalized vendor event.
type Event struct {
	ID   string
	Type string
	// Name is the vendor's event name where it is distinct from Type and
	// finer: Fluent Commerce's "name" ("Send Event",
	// "SelectProposedFulfilment", a rule's or an exception's name). Empty
	// when the vendor sends null and for every other format, whose type
	// already is the event's name (OneWelcome type, fulfillmenttools
	// eventName, Infobip definitionId, Akeneo operation, CloudEvents type).
	Name   string
	Source Format
	Tenant string
	// Key orders events in Kafka: events with the same key keep their order.
	Key string
	// Category is the vendor's coarse class (OneWelcome public|log, Fluent
	// category, Akeneo log_type); it may be empty. Used for topic routing.
	Category   string
	OccurredAt time.Time // always UTC
	// Raw is the original event bytes, unchanged. It may share memory with
	// the input; callers must not modify it.
	Raw []byte
	Pos Position
	// Updated marks a re-delivery of an event whose content changed under
	// the same id (Akeneo merges repeated error logs and moves their
	// timestamp forward).
	Updated bool
}

type eventJSON struct {
	ID         string   `json:"id"`
	Type       string   `json:"type"`
	Name       string   `json:"name,omitempty"`
	Source     Format   `json:"source"`
	Tenant     string   `json:"tenant,omitempty"`
	Key        string   `json:"key"`
	Category   string   `json:"category,omitempty"`
	OccurredAt string   `json:"occurred_at"`
	Position   Position `json:"position"`
	Updated    bool     `json:"updated,omitempty"`
}

// TimeLayout is how OccurredAt is rendered everywhere (JSON output, headers).
const TimeLayout = "2006-01-02T15:04:05.999999999Z"

// AppendTime appends t in UTC as TimeLayout renders it: what
// t.UTC().AppendFormat(dst, TimeLayout) appends, without parsing the
// layout for every event (it is in every message's headers).
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	hour, min, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, min, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendDigits(dst, ns, digits)
	}
	return append(dst, 'Z')
}

// appendDigits appends v (0 <= v < 10^width) as width decimal digits.
func appendDigits(dst []byte, v, width int) []byte {
	n := len(dst) + width
	dst = append(dst, "000000000"[:width]...)
	for i := n - 1; v > 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// MarshalJSON renders the event as one JSON object, the shape `consumer
// decode` and the stdout sink print; see AppendJSON. Note that json.Marshal
// of an Event re-escapes the result ('<', '>', '&', U+2028, U+2029) as
// encoding/json does for every Marshaler: call AppendJSON or MarshalJSON
// directly to keep the raw bytes.
func (e *Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }

// AppendJSON appends the event as one JSON object on one line (no newline)
// to dst, with the raw event embedded under "raw" as read: no byte of it is
// re-escaped or re-encoded ('<', '>', '&', U+2028, the vendor's own escapes,
// key order and number spelling stay as they are). The one change: a raw
// event spanning several lines (pretty-printed) has the whitespace between
// its tokens removed so the object stays on one line. Strings inside the
// event never contain raw line breaks, so nothing else can change.
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetEscapeHTML(false)
	err := enc.Encode(eventJSON{
		ID: e.ID, Type: e.Type, Name: e.Name, Source: e.Source, Tenant: e.Tenant, Key: e.Key,
		Category: e.Category, OccurredAt: string(AppendTime(nil, e.OccurredAt)),
		Position: e.Pos, Updated: e.Updated,
	})
	if err != nil {
		return dst, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	h := bytes.TrimRight(head.Bytes(), "\n")
	dst = append(dst, h[:len(h)-1]...) // without the closing '}'
	dst = append(dst, `,"raw":`...)
	if dst, err = appendRaw(dst, e.Raw); err != nil {
		return dst, fmt.Errorf("encoding event %s: %w", e.ID, err)
	}
	return append(dst, '}'), nil
}

// appendRaw appends a raw event: as is when it is on one line, else with
// the whitespace between tokens removed; null when empty.
func appendRaw(dst, raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return append(dst, "null"...), nil
	}
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		if !json.Valid(raw) {
			return dst, fmt.Errorf("raw event is not valid JSON")
		}
		return append(dst, raw...), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil { // json.Compact escapes nothing
		return dst, fmt.Errorf("compacting raw event: %w", err)
	}
	return append(dst, b.Bytes()...), nil
}
