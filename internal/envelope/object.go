package envelope

import (
	"errors"
	"io"
)

// ObjectReader decodes an object value by value: the pull form of
// DecodeObject, for sources that hand batches on as they fill.
type ObjectReader struct {
	d      *Decoder
	fr     *Framer
	object string
}

// NewObjectReader frames the object read from r (gzip or plain; JSON lines
// or concatenated values). Positions carry the object name, line and
// offset. A failure to start reading is a *StreamError.
func (d *Decoder) NewObjectReader(r io.Reader, object string, maxRecord int) (*ObjectReader, error) {
	fr, err := NewFramer(r, maxRecord)
	if err != nil {
		return nil, &StreamError{Err: err}
	}
	return &ObjectReader{d: d, fr: fr, object: object}, nil
}

// Next decodes the next value, appending its events and errors to res (it
// does not reset res; the events' Raw is never overwritten, so they may be
// kept) and setting res.End. It returns io.EOF after the last value. Bad
// values are reported in res and reading goes on; a failure of the stream
// itself (a truncated gzip file) is returned as a *StreamError after every
// value before it.
func (o *ObjectReader) Next(res *Result) error {
	frame, err := o.fr.Next()
	var ferr *Error
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.As(err, &ferr):
		ferr.Format = o.d.opts.Format
		ferr.Pos.Object = o.object
		res.Errors = append(res.Errors, ferr)
	case err != nil:
		return err
	default:
		o.d.Decode(res, frame.Data, Position{Object: o.object, Line: frame.Line, Offset: frame.Offset})
	}
	res.End = o.fr.Offset()
	return nil
}

// DecodeObject decodes every value of the object read from r (see
// NewObjectReader), calling fn once per value with what it produced. The
// Result passed to fn is reused: fn may keep the Events but not the Result
// itself. A *StreamError is returned after every value before it was passed
// to fn; an error from fn is returned as is.
func (d *Decoder) DecodeObject(r io.Reader, object string, maxRecord int, fn func(*Result) error) error {
	or, err := d.NewObjectReader(r, object, maxRecord)
	if err != nil {
		return err
	}
	var res Result
	for {
		res.Reset()
		if err := or.Next(&res); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := fn(&res); err != nil {
			return err
		}
	}
}
