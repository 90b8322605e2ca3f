package envelope

import (
	"errors"
	"fmt"
)

// ErrorKind classifies a decode error; it is stable and used as a metric
// label and a dead-letter header.
type ErrorKind string

// The error kinds.
const (
	KindSyntax       ErrorKind = "syntax"        // not well-formed JSON
	KindInvalidUTF8  ErrorKind = "invalid_utf8"  // a string is not valid UTF-8
	KindTooLarge     ErrorKind = "too_large"     // over the configured size limit
	KindTruncated    ErrorKind = "truncated"     // the input ended inside a value
	KindNotArray     ErrorKind = "not_array"     // an envelope's "events" is not an array
	KindMissingField ErrorKind = "missing_field" // a required field is absent or null
	KindWrongType    ErrorKind = "wrong_type"    // a field has the wrong JSON type
	KindBadTime      ErrorKind = "bad_time"      // a timestamp does not parse
	KindUnknown      ErrorKind = "unknown_format"
)

// Error is a positioned decode error for one record or event. Decoding goes
// on after it; Raw holds the offending bytes (for too_large, a prefix of
// them) so the record can be dead-lettered.
type Error struct {
	Format Format
	Kind   ErrorKind
	Pos    Position
	Reason string
	Raw    []byte
	// Size is the offending value's length in bytes when Raw holds only a
	// prefix of it (too_large), so a dead letter can tell how large the
	// record really was; a lower bound when the input ended or failed
	// first. 0 when Raw is the whole value.
	Size int64
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Format, e.Pos, e.Reason)
}

// ErrStopped, returned (wrapped or not) by an object's reader, says the
// reading was stopped on purpose (a replay stopping on SIGTERM): the value
// being framed is unread, not bad. The framer then ends with a
// *StreamError at the start of that value, instead of reporting it, and
// the lines buffered after it, as dead letters.
var ErrStopped = errors.New("reading stopped")

// ErrUnread, returned (wrapped) by an object's reader, says the rest of
// the object could not be read (a store that kept failing): as with
// ErrStopped, the value being framed is unread, not bad, and is not
// reported as a dead letter; unlike it, the object did not end on purpose.
var ErrUnread = errors.New("the rest of the object could not be read")

// StreamError is a terminal failure reading an object (a truncated or
// corrupt gzip stream, an I/O error): the events framed before it are good,
// nothing after it can be read.
type StreamError struct {
	Offset int64 // decompressed bytes read before the failure
	Line   int64
	Err    error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("reading input at line %d, offset %d: %v", e.Line, e.Offset, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// IsStreamError reports whether err ends the reading of an object.
func IsStreamError(err error) bool {
	var se *StreamError
	return errors.As(err, &se)
}
