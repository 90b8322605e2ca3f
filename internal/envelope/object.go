package envelope

import (
	"errors"
	"io"
)

// DecodeObject frames the object read from r (gzip or plain; JSON lines or
// concatenated values) and decodes every value, calling fn once per value
// with what it produced. Positions carry the object name, line and offset.
// The Result passed to fn is reused: fn may keep the Events (their Raw is
// never overwritten) but not the Result itself.
//
// Bad values are reported in the Result and reading goes on. A failure of
// the stream itself (a truncated gzip file) is returned as a *StreamError
// after every value before it was delivered; an error from fn is returned
// as is.
func (d *Decoder) DecodeObject(r io.Reader, object string, maxRecord int, fn func(*Result) error) error {
	fr, err := NewFramer(r, maxRecord)
	if err != nil {
		return &StreamError{Err: err}
	}
	var res Result
	for {
		res.Reset()
		frame, err := fr.Next()
		var ferr *Error
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &ferr):
			ferr.Format = d.opts.Format
			ferr.Pos.Object = object
			res.Errors = append(res.Errors, ferr)
		case err != nil:
			return err
		default:
			d.Decode(&res, frame.Data, Position{Object: object, Line: frame.Line, Offset: frame.Offset})
		}
		res.End = fr.Offset()
		if err := fn(&res); err != nil {
			return err
		}
	}
}
