package envelope

import (
	"bytes"
	"fmt"
)

// DefaultMaxEventSize is the default limit on one event's raw size: Kafka's
// default message.max.bytes.
const DefaultMaxEventSize = 1 << 20

// Options configure a Decoder. The zero value decodes any format
// (FormatAuto) with DefaultMaxEventSize and no configured tenant.
type Options struct {
	// Format of the records; FormatAuto (default) sniffs each record.
	Format Format
	// Tenant for formats whose events do not carry one (fulfillmenttools,
	// Infobip): typically taken from the bucket name. Default empty.
	Tenant string
	// MaxEventSize rejects events whose raw bytes are longer; default
	// DefaultMaxEventSize.
	MaxEventSize int
}

// Validate checks the options, naming the field at fault.
func (o Options) Validate() error {
	if o.Format != "" {
		if _, err := ParseFormat(string(o.Format)); err != nil {
			return fmt.Errorf("format: %w", err)
		}
	}
	if o.MaxEventSize < 0 {
		return fmt.Errorf("max_event_size: must not be negative, got %d", o.MaxEventSize)
	}
	return nil
}

// Result collects what decoding one or more records produced. Reuse it
// with Reset to avoid allocations.
type Result struct {
	Events []Event
	Errors []*Error
	// End is set by DecodeObject: the object offset just past the value
	// (or bad bytes) this result came from. A reader that resumes from End
	// neither repeats nor skips anything.
	End int64
}

// Reset empties the result, keeping its capacity.
func (r *Result) Reset() {
	clear(r.Events)
	r.Events = r.Events[:0]
	r.Errors = r.Errors[:0]
}

// Decoder decodes records of one format (or sniffs each). It keeps scratch
// buffers, so it is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	opts Options
	b    builder
}

// NewDecoder returns a decoder for the options.
func NewDecoder(opts Options) (*Decoder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Format == "" {
		opts.Format = FormatAuto
	}
	if opts.MaxEventSize == 0 {
		opts.MaxEventSize = DefaultMaxEventSize
	}
	return &Decoder{opts: opts}, nil
}

// Decode decodes one record (a Kinesis record's data, or one framed JSON
// value of an object) found at pos, appending its events and errors to res.
// A bad event does not stop the others where the record's structure allows.
func (d *Decoder) Decode(res *Result, data []byte, pos Position) {
	f := d.opts.Format
	if f == FormatAuto {
		var err *Error
		if f, err = sniff(data, pos); err != nil {
			res.Errors = append(res.Errors, err)
			return
		}
	}
	switch f {
	case FormatOneWelcome:
		d.oneWelcome(res, data, pos)
	default:
		d.single(res, f, data, pos)
	}
}

// single decodes a record that holds exactly one event.
func (d *Decoder) single(res *Result, f Format, data []byte, pos Position) {
	s := skipWS(data, 0)
	e := trimRightWS(data)
	if s >= e {
		res.Errors = append(res.Errors, newError(f, KindSyntax, pos, data, "empty record"))
		return
	}
	pos.Offset += int64(s)
	raw := data[s:e]
	if len(raw) > d.opts.MaxEventSize {
		res.Errors = append(res.Errors, d.tooLarge(f, pos, raw))
		return
	}
	var ev Event
	var err *Error
	switch f {
	case FormatFulfillmenttools:
		ev, err = d.fulfillmenttools(raw, pos)
	case FormatInfobip:
		ev, err = d.infobip(raw, pos)
	case FormatFluent:
		ev, err = d.fluent(raw, pos)
	case FormatAkeneoLogs:
		ev, err = d.akeneoLog(raw, pos)
	case FormatCloudEvents:
		ev, err = d.cloudEvent(raw, pos)
	}
	if err != nil {
		res.Errors = append(res.Errors, err)
		return
	}
	res.Events = append(res.Events, ev)
}

func (d *Decoder) tooLarge(f Format, pos Position, raw []byte) *Error {
	e := newError(f, KindTooLarge, pos, raw[:min(len(raw), d.opts.MaxEventSize)],
		fmt.Sprintf("event is %d bytes, over the limit of %d", len(raw), d.opts.MaxEventSize))
	e.Size = int64(len(raw))
	return e
}

func newError(f Format, kind ErrorKind, pos Position, raw []byte, reason string) *Error {
	return &Error{Format: f, Kind: kind, Pos: pos, Raw: raw, Reason: reason}
}

// syntaxErr turns a scanner error inside raw (found at pos) into an Error.
func syntaxErr(f Format, pos Position, raw []byte, err *syntaxError) *Error {
	return newError(f, err.kind, pos, raw, fmt.Sprintf("%s: %s", err.kind, err.Error()))
}

func trimRightWS(d []byte) int {
	e := len(d)
	for e > 0 && (d[e-1] == ' ' || d[e-1] == '\n' || d[e-1] == '\r' || d[e-1] == '\t') {
		e--
	}
	return e
}

// sniff tells the format of one record from its top-level keys.
func sniff(data []byte, pos Position) (Format, *Error) {
	it := objIter{d: data, i: skipWS(data, 0)}
	for {
		key, ok, err := it.nextKey()
		if err != nil {
			return "", syntaxErr(FormatAuto, pos, data, err)
		}
		if !ok {
			return "", newError(FormatAuto, KindUnknown, pos, data, "unknown_format: no key identifies the vendor format")
		}
		switch string(key) {
		case "events", "metadata":
			return FormatOneWelcome, nil
		case "eventName":
			return FormatFulfillmenttools, nil
		case "definitionId", "personId":
			return FormatInfobip, nil
		case "generatedOn", "accountId", "rootEntityType":
			return FormatFluent, nil
		case "log_id", "log_type":
			return FormatAkeneoLogs, nil
		case "specversion":
			return FormatCloudEvents, nil
		}
		if _, _, err := it.skip(); err != nil {
			return "", syntaxErr(FormatAuto, pos, data, err)
		}
	}
}

// field indexes the text fields an event is built from.
const (
	fID = iota
	fType
	fTenant
	fKey
	fCategory
	fTime
	fName
	// scratch slots for fields that are combined into the ones above
	fA
	fB
	fC
	fD
	fE
	nField
)

// builder gathers one event's text fields in a scratch buffer and turns
// them into strings with a single allocation.
type builder struct {
	buf   []byte
	spans [nField][2]int
	set   [nField]bool
}

func (b *builder) reset() {
	b.buf = b.buf[:0]
	b.set = [nField]bool{}
}

// text stores the JSON value v as field f: strings are unquoted, numbers
// kept as written, null means absent. Other types are an error.
func (b *builder) text(f int, v []byte) bool {
	switch {
	case len(v) == 0:
		return false
	case v[0] == '"':
		start := len(b.buf)
		if bytes.IndexByte(v, '\\') >= 0 {
			b.buf = appendUnquoted(b.buf, v)
		} else {
			b.buf = append(b.buf, v[1:len(v)-1]...)
		}
		b.spans[f] = [2]int{start, len(b.buf)}
		b.set[f] = true
		return true
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		start := len(b.buf)
		b.buf = append(b.buf, v...)
		b.spans[f] = [2]int{start, len(b.buf)}
		b.set[f] = true
		return true
	case v[0] == 'n':
		return true
	}
	return false
}

// has reports whether field f was set to a non-empty value.
func (b *builder) has(f int) bool { return b.set[f] && b.spans[f][1] > b.spans[f][0] }

// join sets field dst to a + sep + b when both are present.
func (b *builder) join(dst, x, y int, sep byte) {
	if !b.has(x) || !b.has(y) {
		return
	}
	start := len(b.buf)
	b.buf = append(b.buf, b.buf[b.spans[x][0]:b.spans[x][1]]...)
	b.buf = append(b.buf, sep)
	b.buf = append(b.buf, b.buf[b.spans[y][0]:b.spans[y][1]]...)
	b.spans[dst] = [2]int{start, len(b.buf)}
	b.set[dst] = true
}

// fallback sets field dst to the value of src when dst is unset.
func (b *builder) fallback(dst, src int) {
	if !b.has(dst) && b.has(src) {
		b.spans[dst] = b.spans[src]
		b.set[dst] = true
	}
}

// event builds the event from the gathered fields. required lists fields
// that must be present, with the names the vendor uses for them.
func (b *builder) event(f Format, raw []byte, pos Position, required *requiredFields) (Event, *Error) {
	for fi, name := range required {
		if name != "" && !b.has(fi) {
			return Event{}, newError(f, KindMissingField, pos, raw, fmt.Sprintf("missing_field: %s is absent, null or empty", name))
		}
	}
	ev := Event{Source: f, Raw: raw, Pos: pos}
	if b.has(fTime) {
		t, err := parseTime(b.buf[b.spans[fTime][0]:b.spans[fTime][1]])
		if err != nil {
			return Event{}, newError(f, KindBadTime, pos, raw, fmt.Sprintf("bad_time: %s %q: %v", required[fTime], b.buf[b.spans[fTime][0]:b.spans[fTime][1]], err))
		}
		ev.OccurredAt = t
	}
	s := string(b.buf)
	get := func(fi int) string {
		if !b.set[fi] {
			return ""
		}
		return s[b.spans[fi][0]:b.spans[fi][1]]
	}
	ev.ID, ev.Type, ev.Tenant, ev.Key, ev.Category = get(fID), get(fType), get(fTenant), get(fKey), get(fCategory)
	ev.Name = get(fName)
	return ev, nil
}
