package envelope

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/klauspost/compress/gzip"
)

// DefaultMaxRecordSize bounds one framed value (a Firehose line holding an
// envelope of many events, or one JSON-lines row).
const DefaultMaxRecordSize = 8 << 20

const chunkSize = 256 << 10

// Frame is one top-level JSON value of an object. Data is never
// overwritten by later calls, so frames may be kept (and batched) freely.
type Frame struct {
	Data   []byte
	Offset int64 // byte offset in the decompressed object
	Line   int64 // 1-based line on which the value starts
}

// Framer splits an object into its top-level JSON values. JSON lines and
// values concatenated with no separator are both accepted; pretty-printed
// values spanning lines too. Memory is bounded by the maximum record size
// plus one read chunk, however large the object.
type Framer struct {
	r      io.Reader
	max    int
	buf    []byte // current chunk: unread data is buf[start:end]
	start  int
	end    int
	off    int64 // object offset of buf[start]
	line   int64 // line of buf[start]
	eof    bool
	err    error // sticky read error other than EOF
	errOut bool  // the terminal error has been returned
	begun  bool  // the start was checked for a byte order mark
	stack  []byte
	// pool, when set (ObjectReader.Recycle), supplies the chunks; retired
	// are the chunks moved past, in order, until released; bufStamp is
	// the stamp of buf.
	pool     *ChunkPool
	stamp    func() uint64
	retired  []retiredChunk
	bufStamp uint64
}

// IsGzip reports whether b starts with the gzip magic bytes.
func IsGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// NewFramer reads r, gunzipping it when it starts with the gzip magic bytes
// (whatever its name says). maxRecord <= 0 means DefaultMaxRecordSize.
func NewFramer(r io.Reader, maxRecord int) (*Framer, error) {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecordSize
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the first bytes: %w", err)
	}
	var src io.Reader = br
	if IsGzip(magic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip stream: %w", err)
		}
		src = zr
	}
	// The first chunk is taken by the first fill, from the pool if one is
	// set by then.
	return &Framer{r: src, max: maxRecord, line: 1}, nil
}

// Next returns the next value. At the end it returns io.EOF. A bad value
// comes back as an *Error (call Next again to go on); a failure of the
// underlying stream as a *StreamError, after which Next returns io.EOF.
func (f *Framer) Next() (Frame, error) {
	if !f.begun {
		f.begun = true
		f.skipBOM()
	}
	for {
		i := f.start
		for i < f.end && isSpace(f.buf[i]) {
			i++
		}
		f.advance(i)
		if f.start < f.end {
			break
		}
		if f.eof || f.err != nil {
			return Frame{}, f.finalErr()
		}
		f.fill()
	}
	c := f.buf[f.start]
	if c != '{' && c != '[' {
		return Frame{}, f.skipLine(KindSyntax, fmt.Sprintf("syntax: invalid character %q at the start of a value", c))
	}
	return f.scanValue()
}

// utf8BOM is the byte order mark some Windows tools write first.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// skipBOM passes over a UTF-8 byte order mark at the start of the object
// (offsets still count its 3 bytes), which would otherwise make the first
// record a syntax error.
func (f *Framer) skipBOM() {
	for f.end-f.start < len(utf8BOM) && !f.eof && f.err == nil {
		f.fill()
	}
	if bytes.HasPrefix(f.buf[f.start:f.end], utf8BOM) {
		f.advance(f.start + len(utf8BOM))
	}
}

// Offset is the object offset just past what Next has returned so far.
func (f *Framer) Offset() int64 { return f.off }

func (f *Framer) finalErr() error {
	if f.err != nil && !f.errOut {
		f.errOut = true
		return &StreamError{Offset: f.off, Line: f.line, Err: f.err}
	}
	return io.EOF
}

// fill reads more data after f.end, moving the unread bytes to a new chunk
// when the current one is full (earlier frames keep pointing at the old one).
func (f *Framer) fill() {
	if f.end == len(f.buf) {
		n := f.end - f.start
		size := max(chunkSize, 2*n)
		var nb []byte
		var stamp uint64
		switch {
		case f.pool == nil || size != chunkSize:
			nb = make([]byte, size)
		default:
			stamp = f.stamp()
			nb = f.pool.get()
		}
		copy(nb, f.buf[f.start:f.end])
		if f.pool != nil && f.buf != nil {
			// Frames returned so far end at or before f.off; the unread
			// bytes move to the new chunk.
			f.retired = append(f.retired, retiredChunk{buf: f.buf, end: f.off, stamp: f.bufStamp})
		}
		f.buf, f.start, f.end, f.bufStamp = nb, 0, n, stamp
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	switch {
	case errors.Is(err, io.EOF):
		f.eof = true
	case err != nil:
		f.err = err
	}
}

// advance consumes the unread bytes up to index i, counting lines.
func (f *Framer) advance(i int) {
	f.line += int64(bytes.Count(f.buf[f.start:i], []byte{'\n'}))
	f.off += int64(i - f.start)
	f.start = i
}

func (f *Framer) pos() Position { return Position{Line: f.line, Offset: f.off} }

// skipLine reports the bytes from the current one to the end of its line
// (prefixed by raw) as bad and consumes them, keeping at most max bytes.
func (f *Framer) skipLine(kind ErrorKind, reason string) error {
	return f.skipLineFrom(f.pos(), nil, kind, reason)
}

func (f *Framer) skipLineFrom(pos Position, raw []byte, kind ErrorKind, reason string) error {
	for {
		if j := bytes.IndexByte(f.buf[f.start:f.end], '\n'); j >= 0 {
			raw = appendBounded(raw, f.buf[f.start:f.start+j], f.max)
			f.advance(f.start + j + 1)
			break
		}
		raw = appendBounded(raw, f.buf[f.start:f.end], f.max)
		f.advance(f.end)
		if f.eof || f.err != nil {
			break
		}
		f.fill()
	}
	return &Error{Kind: kind, Pos: pos, Raw: raw, Reason: reason}
}

// scanState tracks a value being framed.
type scanState struct {
	rel   int  // bytes of the value scanned so far, from f.start
	nl    int  // first newline outside strings inside the value, or -1
	inStr bool // inside a string
	esc   bool // after a backslash inside a string
}

// scanValue frames the value starting at f.start.
func (f *Framer) scanValue() (Frame, error) {
	pos := f.pos()
	f.stack = f.stack[:0]
	st := scanState{nl: -1}
	for {
		for lim := min(f.end, f.start+f.max); f.start+st.rel < lim; {
			if st.inStr && !st.esc {
				// Jump over plain string bytes eight at a time.
				j := f.start + st.rel
				for j+8 <= lim {
					m := special(binary.LittleEndian.Uint64(f.buf[j:]))
					if m == 0 {
						j += 8
						continue
					}
					j += bits.TrailingZeros64(m) >> 3
					break
				}
				if st.rel = j - f.start; j >= lim {
					break
				}
			}
			c := f.buf[f.start+st.rel]
			if st.inStr {
				switch {
				case st.esc:
					st.esc = false
				case c == '\\':
					st.esc = true
				case c == '"':
					st.inStr = false
				case c == '\n':
					return Frame{}, f.badValue(pos, &st, KindSyntax, "syntax: line ends inside a string")
				}
				st.rel++
				continue
			}
			switch c {
			case '"':
				st.inStr = true
			case '{', '[':
				if len(f.stack) >= maxDepth {
					return Frame{}, f.badValue(pos, &st, KindSyntax, fmt.Sprintf("syntax: nesting deeper than %d", maxDepth))
				}
				f.stack = append(f.stack, c)
			case '}', ']':
				top := f.stack[len(f.stack)-1]
				if (top == '{') != (c == '}') {
					return Frame{}, f.badValue(pos, &st, KindSyntax, fmt.Sprintf("syntax: %q closes %q", c, top))
				}
				f.stack = f.stack[:len(f.stack)-1]
				if len(f.stack) == 0 {
					fr := Frame{Data: f.buf[f.start : f.start+st.rel+1], Offset: pos.Offset, Line: pos.Line}
					f.advance(f.start + st.rel + 1)
					return fr, nil
				}
			case '\n':
				if st.nl < 0 {
					st.nl = st.rel
				}
			}
			st.rel++
		}
		switch {
		case st.rel >= f.max:
			return Frame{}, f.oversize(pos, &st)
		case f.err != nil && (errors.Is(f.err, ErrStopped) || errors.Is(f.err, ErrUnread)):
			return Frame{}, f.finalErr() // unread, not truncated
		case f.eof || f.err != nil:
			return Frame{}, f.badValue(pos, &st, KindTruncated, "truncated: input ends inside a value")
		}
		f.fill()
	}
}

// badValue reports a value that cannot be framed. When it spans lines the
// first line is reported and framing resumes on the next one (a JSON-lines
// file with one broken line loses only that line); otherwise the rest of
// the current line goes with it.
func (f *Framer) badValue(pos Position, st *scanState, kind ErrorKind, reason string) error {
	if st.nl >= 0 {
		raw := f.buf[f.start : f.start+st.nl]
		f.advance(f.start + st.nl + 1)
		return &Error{Kind: kind, Pos: pos, Raw: raw, Reason: reason}
	}
	raw := appendBounded(nil, f.buf[f.start:f.start+st.rel], f.max)
	f.advance(f.start + st.rel)
	return f.skipLineFrom(pos, raw, kind, reason)
}

// oversize handles a value longer than the maximum record size: a
// multi-line one is a value never closed (a broken line whose following
// lines it swallowed): its first line is reported as a syntax error and
// reading resumes on the next line; a single-line one is discarded up to
// its end, keeping a prefix for the dead letter.
func (f *Framer) oversize(pos Position, st *scanState) error {
	if st.nl >= 0 {
		return f.badValue(pos, st, KindSyntax, fmt.Sprintf("syntax: value not closed within the maximum record size of %d bytes", f.max))
	}
	reason := fmt.Sprintf("too_large: value exceeds the maximum record size of %d bytes", f.max)
	prefix := append([]byte(nil), f.buf[f.start:f.start+f.max]...)
	total := int64(st.rel)
	f.advance(f.start + st.rel)
	for {
		for f.start < f.end {
			c := f.buf[f.start]
			switch {
			case c == '\n':
				f.advance(f.start + 1)
				return &Error{Kind: KindTooLarge, Pos: pos, Raw: prefix, Size: total, Reason: fmt.Sprintf("%s (the line is %d bytes)", reason, total)}
			case st.inStr && st.esc:
				st.esc = false
			case st.inStr && c == '\\':
				st.esc = true
			case st.inStr && c == '"':
				st.inStr = false
			case st.inStr:
			case c == '"':
				st.inStr = true
			case c == '{' || c == '[':
				f.stack = append(f.stack, c)
			case c == '}' || c == ']':
				f.stack = f.stack[:len(f.stack)-1]
			}
			f.start++
			f.off++
			total++
			if len(f.stack) == 0 {
				return &Error{Kind: KindTooLarge, Pos: pos, Raw: prefix, Size: total, Reason: fmt.Sprintf("%s (the value is %d bytes)", reason, total)}
			}
			if len(f.stack) > maxDepth {
				return &Error{Kind: KindTooLarge, Pos: pos, Raw: prefix, Size: total, Reason: fmt.Sprintf("%s (%d bytes or more)", reason, total)}
			}
		}
		if f.eof || f.err != nil {
			return &Error{Kind: KindTooLarge, Pos: pos, Raw: prefix, Size: total, Reason: fmt.Sprintf("%s (%d bytes or more)", reason, total)}
		}
		f.fill()
	}
}

func appendBounded(dst, src []byte, limit int) []byte {
	if room := limit - len(dst); room < len(src) {
		src = src[:max(room, 0)]
	}
	return append(dst, src...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
