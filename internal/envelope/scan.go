package envelope

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting so hostile input cannot exhaust the stack.
const maxDepth = 256

// syntaxError is a scanner failure at a byte offset inside the scanned slice.
type syntaxError struct {
	off  int
	kind ErrorKind
	msg  string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

func errAt(off int, kind ErrorKind, format string, args ...any) *syntaxError {
	return &syntaxError{off: off, kind: kind, msg: fmt.Sprintf(format, args...)}
}

// strSafe[c] is true for bytes that need no attention inside a JSON string.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func skipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue validates the JSON value starting at d[i] (no leading space)
// and returns the index just past it.
func skipValue(d []byte, i, depth int) (int, *syntaxError) {
	if i >= len(d) {
		return i, errAt(i, KindTruncated, "unexpected end of input")
	}
	switch c := d[i]; {
	case c == '"':
		end, _, err := skipString(d, i)
		return end, err
	case c == '{':
		return skipObject(d, i, depth+1)
	case c == '[':
		return skipArray(d, i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(d, i)
	case c == 't':
		return skipLiteral(d, i, "true")
	case c == 'f':
		return skipLiteral(d, i, "false")
	case c == 'n':
		return skipLiteral(d, i, "null")
	default:
		return i, errAt(i, KindSyntax, "invalid character %q looking for a value", c)
	}
}

func skipLiteral(d []byte, i int, lit string) (int, *syntaxError) {
	if len(d)-i < len(lit) {
		return len(d), errAt(len(d), KindTruncated, "unexpected end of input in literal")
	}
	if string(d[i:i+len(lit)]) != lit {
		return i, errAt(i, KindSyntax, "invalid literal, want %s", lit)
	}
	return i + len(lit), nil
}

// skipString returns the index past the closing quote and whether the
// string holds escapes. It rejects control characters and invalid UTF-8.
// Eight bytes are examined at a time: special marks the bytes that need
// attention and the lowest one is exact (borrows only run upward), so the
// loop jumps straight to the next quote, backslash, control or non-ASCII byte.
func skipString(d []byte, i int) (int, bool, *syntaxError) {
	esc := false
	i++
	for {
		for i+8 <= len(d) {
			m := special(binary.LittleEndian.Uint64(d[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
			break
		}
		for i < len(d) && strSafe[d[i]] {
			i++
		}
		if i >= len(d) {
			return len(d), esc, errAt(len(d), KindTruncated, "unexpected end of input in string")
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			n, err := skipEscape(d, i)
			if err != nil {
				return n, esc, err
			}
			i = n
		case c < 0x20:
			return i, esc, errAt(i, KindSyntax, "control character 0x%02x in string", c)
		case c >= 0x80:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, esc, errAt(i, KindInvalidUTF8, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

// special sets the high bit of each byte of x that is a quote, a backslash,
// a control character or non-ASCII; the lowest set byte is exact.
func special(x uint64) uint64 {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	ctl := (x - lsb*0x20) & ^x // byte < 0x20
	zq := (q - lsb) & ^q       // byte == '"'
	zb := (bs - lsb) & ^bs     // byte == '\\'
	return (ctl | zq | zb | x) & msb
}

func skipEscape(d []byte, i int) (int, *syntaxError) {
	if i+1 >= len(d) {
		return len(d), errAt(len(d), KindTruncated, "unexpected end of input in escape")
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, nil
	case 'u':
		if i+6 > len(d) {
			return len(d), errAt(len(d), KindTruncated, "unexpected end of input in escape")
		}
		for _, h := range d[i+2 : i+6] {
			if hexVal(h) < 0 {
				return i, errAt(i, KindSyntax, "invalid \\u escape")
			}
		}
		return i + 6, nil
	default:
		return i, errAt(i, KindSyntax, "invalid escape \\%c", d[i+1])
	}
}

func skipNumber(d []byte, i int) (int, *syntaxError) {
	start := i
	if d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		return i, errAt(start, KindSyntax, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return i, errAt(start, KindSyntax, "invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return i, errAt(start, KindSyntax, "invalid number")
		}
	}
	return i, nil
}

func skipArray(d []byte, i, depth int) (int, *syntaxError) {
	if depth > maxDepth {
		return i, errAt(i, KindSyntax, "nesting deeper than %d", maxDepth)
	}
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == ']' {
		return i + 1, nil
	}
	for {
		var err *syntaxError
		if i, err = skipValue(d, i, depth); err != nil {
			return i, err
		}
		i = skipWS(d, i)
		if i >= len(d) {
			return i, errAt(i, KindTruncated, "unexpected end of input in array")
		}
		switch d[i] {
		case ',':
			i = skipWS(d, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, errAt(i, KindSyntax, "invalid character %q after array element", d[i])
		}
	}
}

func skipObject(d []byte, i, depth int) (int, *syntaxError) {
	if depth > maxDepth {
		return i, errAt(i, KindSyntax, "nesting deeper than %d", maxDepth)
	}
	it := objIter{d: d, i: i, depth: depth}
	for {
		_, _, _, ok, err := it.next()
		if err != nil {
			return it.i, err
		}
		if !ok {
			return it.i, nil
		}
	}
}

// objIter walks the members of a JSON object, validating as it goes.
// depth is the nesting depth of the object itself.
type objIter struct {
	d       []byte
	i       int
	depth   int
	started bool
}

// nextKey advances to the next member and returns its key (unquoted);
// it.i is then at the member's value, which the caller must consume with
// skip or by iterating it and setting it.i past it. ok is false after the
// closing brace; it.i is then just past it.
func (it *objIter) nextKey() (key []byte, ok bool, err *syntaxError) {
	d := it.d
	if !it.started {
		it.started = true
		if it.i >= len(d) || d[it.i] != '{' {
			return nil, false, errAt(it.i, KindSyntax, "expected an object")
		}
		it.i = skipWS(d, it.i+1)
		if it.i < len(d) && d[it.i] == '}' {
			it.i++
			return nil, false, nil
		}
	} else {
		it.i = skipWS(d, it.i)
		if it.i >= len(d) {
			return nil, false, errAt(it.i, KindTruncated, "unexpected end of input in object")
		}
		switch d[it.i] {
		case '}':
			it.i++
			return nil, false, nil
		case ',':
			it.i = skipWS(d, it.i+1)
		default:
			return nil, false, errAt(it.i, KindSyntax, "invalid character %q after object member", d[it.i])
		}
	}
	if it.i >= len(d) {
		return nil, false, errAt(it.i, KindTruncated, "unexpected end of input in object")
	}
	if d[it.i] != '"' {
		return nil, false, errAt(it.i, KindSyntax, "invalid character %q looking for an object key", d[it.i])
	}
	ks := it.i
	ke, esc, serr := skipString(d, ks)
	if serr != nil {
		return nil, false, serr
	}
	it.i = skipWS(d, ke)
	if it.i >= len(d) || d[it.i] != ':' {
		return nil, false, errAt(it.i, KindSyntax, "expected ':' after object key")
	}
	it.i = skipWS(d, it.i+1)
	if esc {
		return appendUnquoted(nil, d[ks:ke]), true, nil
	}
	return d[ks+1 : ke-1], true, nil
}

// skip consumes the current member's value and returns its span.
func (it *objIter) skip() (vs, ve int, err *syntaxError) {
	vs = it.i
	ve, err = skipValue(it.d, vs, it.depth)
	it.i = ve
	return vs, ve, err
}

// child returns an iterator over the current member's value when it is an
// object; the caller sets it.i = child.i when the child is done.
func (it *objIter) child() (objIter, bool) {
	if it.i >= len(it.d) || it.d[it.i] != '{' || it.depth >= maxDepth {
		return objIter{}, false
	}
	return objIter{d: it.d, i: it.i, depth: it.depth + 1}, true
}

// next returns the next member's key and value span.
func (it *objIter) next() (key []byte, vs, ve int, ok bool, err *syntaxError) {
	if key, ok, err = it.nextKey(); !ok || err != nil {
		return nil, 0, 0, ok, err
	}
	vs, ve, err = it.skip()
	return key, vs, ve, err == nil, err
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnquoted appends the contents of the validated JSON string q
// (with its quotes) to dst, resolving escapes.
func appendUnquoted(dst, q []byte) []byte {
	q = q[1 : len(q)-1]
	for i := 0; i < len(q); {
		c := q[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch q[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(q[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(q) && q[i] == '\\' && q[i+1] == 'u' {
					r2 = hex4(q[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, q[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}
