// Package envelope owns the vendor event formats. It turns bytes into
// normalized events (or positioned decode errors) and does no I/O of its own:
// callers hand it a record's bytes (a Kinesis record's data) or a reader
// (an exported object), and it hands back [Event] values whose Raw field is
// the vendor's original event bytes, unchanged.
//
// Every supported format is listed in [Formats]. The OneWelcome envelope
// decoder is the hot path: it splits the "events" array and extracts only the
// metadata fields the pipeline needs, without building maps, and Raw is a
// sub-slice of the input. All decoders share one validating JSON scanner, so
// an event that reaches Kafka is always well-formed UTF-8 JSON.
//
// Framing ([Framer]) finds the JSON values in an object: gzip is detected by
// its magic bytes, JSON lines and values concatenated without separators are
// both accepted, memory is bounded by the maximum record size, and a bad
// value is reported with its line and byte offset while framing continues
// with the next one.
package envelope
