package envelope

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// stoppingReader serves src up to cut, then reports ErrStopped (wrapped,
// as a replay's reader does when its stop closes the object).
type stoppingReader struct {
	src []byte
	cut int
}

func (s *stoppingReader) Read(p []byte) (int, error) {
	if s.cut == 0 {
		return 0, fmt.Errorf("read on a closed body: %w", ErrStopped)
	}
	n := copy(p, s.src[:s.cut])
	s.src, s.cut = s.src[n:], s.cut-n
	return n, nil
}

// TestStopMidValueIsNoDeadLetter: a reader stopped in the middle of a value
// (a one-line envelope, or a pretty-printed one spanning lines) ends the
// object with a *StreamError at the start of that value: no dead letter
// for it, and none for the lines of it already buffered. Before, the
// value was reported truncated and each buffered line after it as bad.
func TestStopMidValueIsNoDeadLetter(t *testing.T) {
	ev := `{"metadata":{"eventId":"e-%d","type":"UserSignedInEvent","category":"public","aggregateId":"a","tenantId":"t","occurredTime":"2024-02-01T09:00:00Z"},"payload":{"p":"xyz"}}`
	var oneLine, pretty strings.Builder
	for i := range 40 {
		fmt.Fprintf(&oneLine, `{"events":[`+ev+`,`+ev+`]}`+"\n", 2*i, 2*i+1)
		fmt.Fprintf(&pretty, "{\n  \"events\": [\n    "+ev+",\n    "+ev+"\n  ]\n}\n", 2*i, 2*i+1)
	}
	d, _ := NewDecoder(Options{Format: FormatOneWelcome})
	for name, src := range map[string]string{"one-line": oneLine.String(), "pretty": pretty.String()} {
		for _, gz := range []bool{false, true} {
			data := []byte(src)
			if gz {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(data)
				zw.Close()
				data = z.Bytes()
			}
			// Stop at 60% of the bytes: inside some value.
			or, err := d.NewObjectReader(&stoppingReader{src: data, cut: len(data) * 6 / 10}, "o", 0)
			if err != nil {
				t.Fatal(err)
			}
			var res Result
			for err == nil {
				err = or.Next(&res)
			}
			var se *StreamError
			if !errors.As(err, &se) || !errors.Is(err, ErrStopped) {
				t.Errorf("%s gzip=%v: ended with %v, want a *StreamError wrapping ErrStopped", name, gz, err)
			}
			if len(res.Errors) > 0 {
				t.Errorf("%s gzip=%v: %d dead letters from valid input cut by the stop, the first %s: %.60q", name, gz, len(res.Errors), res.Errors[0].Reason, res.Errors[0].Raw)
			}
			// The error is where the unread value starts: after the last
			// value and the newline that ends it.
			if len(res.Events) == 0 || len(res.Events)%2 != 0 || se == nil || se.Offset != res.End+1 {
				t.Errorf("%s gzip=%v: %d events before the stop, stream error at %v, last value ended at %d; want whole envelopes, and the error where the unread value starts", name, gz, len(res.Events), se, res.End)
			}
		}
	}
}
