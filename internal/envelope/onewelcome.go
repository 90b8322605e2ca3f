package envelope

import "fmt"

// oneWelcome decodes a OneWelcome record: an envelope {"events":[...]} of
// several events (the Kinesis and Firehose form) or, from some exporter
// versions, one bare event. This is the hot path: one pass over the bytes,
// no maps, and each event's Raw is a sub-slice of data.
func (d *Decoder) oneWelcome(res *Result, data []byte, pos Position) {
	const f = FormatOneWelcome
	it := objIter{d: data, i: skipWS(data, 0)}
	sawEvents := false
	for {
		key, ok, err := it.nextKey()
		if err != nil {
			res.Errors = append(res.Errors, syntaxErr(f, pos, data, err))
			return
		}
		if !ok {
			break
		}
		switch string(key) {
		case "events":
			if sawEvents {
				res.Errors = append(res.Errors, newError(f, KindSyntax, pos, data, "syntax: envelope has two \"events\" members"))
				return
			}
			sawEvents = true
			end, ok := d.oneWelcomeEvents(res, data, it.i, pos)
			if !ok {
				return
			}
			it.i = end
		case "metadata", "payload":
			if !sawEvents {
				d.oneWelcomeBare(res, data, pos)
				return
			}
			fallthrough
		default:
			if _, _, err := it.skip(); err != nil {
				res.Errors = append(res.Errors, syntaxErr(f, pos, data, err))
				return
			}
		}
	}
	if rest := skipWS(data, it.i); rest != len(data) {
		res.Errors = append(res.Errors, newError(f, KindSyntax, pos, data, fmt.Sprintf("syntax: unexpected data after the envelope at byte %d", rest)))
		return
	}
	if !sawEvents {
		res.Errors = append(res.Errors, newError(f, KindMissingField, pos, data, "missing_field: record has neither \"events\" nor \"metadata\""))
	}
}

// oneWelcomeBare decodes a record holding one event without an envelope.
func (d *Decoder) oneWelcomeBare(res *Result, data []byte, pos Position) {
	s, e := skipWS(data, 0), trimRightWS(data)
	pos.Offset += int64(s)
	raw := data[s:e]
	if len(raw) > d.opts.MaxEventSize {
		res.Errors = append(res.Errors, d.tooLarge(FormatOneWelcome, pos, raw))
		return
	}
	ev, err := d.object(FormatOneWelcome, raw, pos, oneWelcomeEvent, oneWelcomeRequired, oneWelcomeFinish)
	if err != nil {
		res.Errors = append(res.Errors, err)
		return
	}
	res.Events = append(res.Events, ev)
}

// oneWelcomeEvents decodes the "events" array starting at data[i]. It
// returns the index past the array, or ok=false when the rest of the record
// cannot be read (the error is recorded).
func (d *Decoder) oneWelcomeEvents(res *Result, data []byte, i int, pos Position) (end int, ok bool) {
	const f = FormatOneWelcome
	if i >= len(data) || data[i] != '[' {
		res.Errors = append(res.Errors, newError(f, KindNotArray, pos, data, "not_array: \"events\" is not an array"))
		return 0, false
	}
	base := pos.Offset
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for idx := 0; ; idx++ {
		pos.Index, pos.Offset = idx, base+int64(i)
		ee, err := d.oneWelcomeElement(res, data, i, pos)
		if err != nil {
			res.Errors = append(res.Errors, syntaxErr(f, pos, data, err))
			return 0, false
		}
		i = skipWS(data, ee)
		switch {
		case i >= len(data):
			res.Errors = append(res.Errors, newError(f, KindTruncated, pos, data, "truncated: record ends inside the events array"))
			return 0, false
		case data[i] == ']':
			return i + 1, true
		case data[i] == ',':
			i = skipWS(data, i+1)
		default:
			res.Errors = append(res.Errors, newError(f, KindSyntax, pos, data, fmt.Sprintf("syntax: invalid character %q after event %d at byte %d", data[i], idx, i)))
			return 0, false
		}
	}
}

// oneWelcomeElement decodes the array element at data[i] into an event or
// a positioned error, returning the index past it. A returned syntax error
// means the element's end could not be found.
func (d *Decoder) oneWelcomeElement(res *Result, data []byte, i int, pos Position) (int, *syntaxError) {
	const f = FormatOneWelcome
	if i >= len(data) || data[i] != '{' {
		ee, err := skipValue(data, i, 2)
		if err != nil {
			return ee, err
		}
		res.Errors = append(res.Errors, newError(f, KindWrongType, pos, data[i:ee], fmt.Sprintf("wrong_type: event %d is not an object", pos.Index)))
		return ee, nil
	}
	d.b.reset()
	end, bad, err := d.b.collect(objIter{d: data, i: i, depth: 2}, oneWelcomeEvent)
	if err != nil {
		return end, err
	}
	raw := data[i:end]
	switch {
	case len(raw) > d.opts.MaxEventSize:
		res.Errors = append(res.Errors, d.tooLarge(f, pos, raw))
	case bad != "":
		res.Errors = append(res.Errors, newError(f, KindWrongType, pos, raw, "wrong_type: "+bad))
	default:
		oneWelcomeFinish(&d.b)
		ev, derr := d.b.event(f, raw, pos, oneWelcomeRequired)
		if derr != nil {
			res.Errors = append(res.Errors, derr)
		} else {
			res.Events = append(res.Events, ev)
		}
	}
	return end, nil
}
