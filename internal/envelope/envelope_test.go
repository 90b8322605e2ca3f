package envelope

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func mustDecoder(t testing.TB, opts Options) *Decoder {
	t.Helper()
	d, err := NewDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func decodeRecord(t testing.TB, opts Options, data []byte) Result {
	t.Helper()
	var res Result
	mustDecoder(t, opts).Decode(&res, data, Position{Shard: "shardId-000000000001", Sequence: "4959"})
	return res
}

func kinds(errs []*Error) []ErrorKind {
	var k []ErrorKind
	for _, e := range errs {
		k = append(k, e.Kind)
	}
	return k
}

func owEvent(id, agg, occurred string) string {
	return `{"metadata":{"eventId":"` + id + `","type":"UserSignedInEvent","category":"public","aggregateId":"` + agg +
		`","tenantId":"t1","occurredTime":"` + occurred + `"},"payload":{"a":[1,2,{"b":"c\"}"}]}}`
}

func TestOneWelcomeRecord(t *testing.T) {
	e1 := owEvent("e1", "agg-1", "2022-07-13T18:59:43.596191+02:00")
	e2 := owEvent("e2", "agg-2", "2022-07-13T17:00:00Z")
	tests := []struct {
		name     string
		data     string
		wantIDs  []string
		wantErrs []ErrorKind
	}{
		{"envelope", `{"events":[` + e1 + `,` + e2 + `]}`, []string{"e1", "e2"}, nil},
		{"envelope with spaces and other members", " {\"v\":1,\n \"events\" : [ " + e1 + " ] ,\"x\":null}\n", []string{"e1"}, nil},
		{"empty envelope", `{"events":[]}`, nil, nil},
		{"bare event", e2, []string{"e2"}, nil},
		{"events not an array", `{"events":{"a":1}}`, nil, []ErrorKind{KindNotArray}},
		{"events null", `{"events":null}`, nil, []ErrorKind{KindNotArray}},
		{"one bad event among good", `{"events":[` + e1 + `,{"metadata":{"eventId":"x"}},` + e2 + `]}`, []string{"e1", "e2"}, []ErrorKind{KindMissingField}},
		{"syntax error stops the record", `{"events":[` + e1 + `,{"metadata":}]}`, []string{"e1"}, []ErrorKind{KindSyntax}},
		{"truncated record", `{"events":[` + e1 + `,` + e2[:40], []string{"e1"}, []ErrorKind{KindTruncated}},
		{"trailing garbage", `{"events":[` + e1 + `]} x`, []string{"e1"}, []ErrorKind{KindSyntax}},
		{"not an object", `[1,2]`, nil, []ErrorKind{KindSyntax}},
		{"empty", ``, nil, []ErrorKind{KindSyntax}},
		{"invalid utf-8 in payload", `{"events":[` + strings.Replace(e1, `"c\"}"`, "\"c\xff\"", 1) + `]}`, nil, []ErrorKind{KindInvalidUTF8}},
		{"deep nesting", `{"events":[{"metadata":{},"payload":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}]}`, nil, []ErrorKind{KindSyntax}},
		{"escaped fields", `{"events":[{"metadata":{"eventId":"e\u00e9\"","type":"T","occurredTime":"2022-07-13T17:00:00Z"}}]}`, []string{"eé\""}, nil},
		{"wrong type", `{"events":[{"metadata":{"eventId":{"x":1},"type":"T","occurredTime":"2022-07-13T17:00:00Z"}}]}`, nil, []ErrorKind{KindWrongType}},
		// metadata that is not an object is the wrong type, not missing
		// fields (it once reported missing_field); null is absent.
		{"metadata a string", `{"events":[{"metadata":"x"},` + e1 + `]}`, []string{"e1"}, []ErrorKind{KindWrongType}},
		{"metadata an array", `{"events":[{"metadata":[1]}]}`, nil, []ErrorKind{KindWrongType}},
		{"metadata null", `{"events":[{"metadata":null}]}`, nil, []ErrorKind{KindMissingField}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			res := decodeRecord(t, Options{Format: FormatOneWelcome}, data)
			var ids []string
			for _, ev := range res.Events {
				ids = append(ids, ev.ID)
				// Raw is the unchanged event, a sub-slice of the record at its offset.
				if !bytes.Equal(data[ev.Pos.Offset:ev.Pos.Offset+int64(len(ev.Raw))], ev.Raw) {
					t.Errorf("event %s: raw is not the input at offset %d", ev.ID, ev.Pos.Offset)
				}
				if &data[ev.Pos.Offset] != &ev.Raw[0] {
					t.Errorf("event %s: raw was copied, want a sub-slice of the input", ev.ID)
				}
				if !json.Valid(ev.Raw) {
					t.Errorf("event %s: raw is not valid JSON", ev.ID)
				}
				if ev.OccurredAt.Location() != time.UTC {
					t.Errorf("event %s: occurred_at not UTC", ev.ID)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("ids = %v, want %v", ids, tc.wantIDs)
			}
			if got := kinds(res.Errors); !equalKinds(got, tc.wantErrs) {
				t.Errorf("errors = %v (%v), want %v", got, res.Errors, tc.wantErrs)
			}
			for _, e := range res.Errors {
				if e.Pos.Shard != "shardId-000000000001" || e.Pos.Sequence != "4959" || e.Reason == "" || len(e.Raw) == 0 && len(data) > 0 {
					t.Errorf("error lacks position, reason or raw bytes: %+v", e)
				}
			}
		})
	}
}

func equalKinds(a, b []ErrorKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOneWelcomeFields(t *testing.T) {
	data := []byte(`{"events":[` + owEvent("e1", "agg-1", "2022-07-13T18:59:43.596191+02:00") +
		`,{"metadata":{"eventId":"e2","type":"T","category":"log","occurredTime":"2022-07-13T17:00:00Z"}}]}`)
	res := decodeRecord(t, Options{}, data) // auto
	if len(res.Events) != 2 || len(res.Errors) != 0 {
		t.Fatalf("got %d events, errors %v", len(res.Events), res.Errors)
	}
	ev := res.Events[0]
	want := Event{ID: "e1", Type: "UserSignedInEvent", Source: FormatOneWelcome, Tenant: "t1", Key: "agg-1", Category: "public",
		OccurredAt: time.Date(2022, 7, 13, 16, 59, 43, 596191000, time.UTC)}
	if ev.ID != want.ID || ev.Type != want.Type || ev.Source != want.Source || ev.Tenant != want.Tenant ||
		ev.Key != want.Key || ev.Category != want.Category || !ev.OccurredAt.Equal(want.OccurredAt) {
		t.Errorf("event = %+v, want %+v", ev, want)
	}
	if ev.Pos.Index != 0 || res.Events[1].Pos.Index != 1 {
		t.Errorf("indices = %d,%d", ev.Pos.Index, res.Events[1].Pos.Index)
	}
	if res.Events[1].Key != "e2" {
		t.Errorf("event without aggregateId keyed %q, want its event id", res.Events[1].Key)
	}
}

// TestWrongTypeReasons: a wrong_type error says what the member must be;
// an optional nested object (a fulfillmenttools payload, a Fluent context)
// of another type only leaves its fields unset.
func TestWrongTypeReasons(t *testing.T) {
	res := decodeRecord(t, Options{Format: FormatOneWelcome}, []byte(`{"events":[{"metadata":"x"}]}`))
	if len(res.Errors) != 1 || res.Errors[0].Reason != "wrong_type: metadata must be an object" {
		t.Errorf("metadata string: %v", res.Errors)
	}
	res = decodeRecord(t, Options{Format: FormatOneWelcome}, []byte(`{"events":[{"metadata":{"eventId":"e","type":["T"],"occurredTime":"2022-07-13T17:00:00Z"}}]}`))
	if len(res.Errors) != 1 || res.Errors[0].Reason != "wrong_type: metadata.type must be a string" {
		t.Errorf("type array: %v", res.Errors)
	}
	res = decodeRecord(t, Options{Format: FormatFulfillmenttools, Tenant: "acme"}, []byte(`{"id":"f1","eventName":"ORDER_CREATED","created":"2024-02-01T10:00:00Z","payload":[{"id":"o1"}]}`))
	if len(res.Errors) != 0 || len(res.Events) != 1 || res.Events[0].Key != "f1" {
		t.Errorf("fulfillmenttools payload array: events %v errors %v, want one event keyed by its id", res.Events, res.Errors)
	}
	res = decodeRecord(t, Options{Format: FormatFluent}, []byte(`{"id":"x","name":null,"type":"T","accountId":"A","context":"none","generatedOn":"2022-03-16T04:03:00.089+0000"}`))
	if len(res.Errors) != 0 || len(res.Events) != 1 {
		t.Errorf("Fluent context string: events %v errors %v, want one event", res.Events, res.Errors)
	}
}

func TestMaxEventSize(t *testing.T) {
	small := owEvent("small", "a", "2022-07-13T17:00:00Z")
	big := `{"metadata":{"eventId":"big","type":"T","occurredTime":"2022-07-13T17:00:00Z"},"payload":{"blob":"` + strings.Repeat("x", 500) + `"}}`
	res := decodeRecord(t, Options{Format: FormatOneWelcome, MaxEventSize: 400}, []byte(`{"events":[`+small+`,`+big+`,`+small+`]}`))
	if len(res.Events) != 2 || !equalKinds(kinds(res.Errors), []ErrorKind{KindTooLarge}) {
		t.Fatalf("events %d, errors %v", len(res.Events), res.Errors)
	}
	if e := res.Errors[0]; e.Pos.Index != 1 || len(e.Raw) != 400 || e.Size != int64(len(big)) || !strings.Contains(e.Reason, "over the limit of 400") {
		t.Errorf("too_large error = %+v", e)
	}
	res = decodeRecord(t, Options{Format: FormatFluent, MaxEventSize: 100}, []byte(`{"id":"x","type":"T","generatedOn":"2022-03-16T04:03:00.089+0000","pad":"`+strings.Repeat("y", 200)+`"}`))
	if !equalKinds(kinds(res.Errors), []ErrorKind{KindTooLarge}) {
		t.Errorf("single-event format: errors %v", res.Errors)
	}
}

func TestSeedExamplesDecode(t *testing.T) {
	tests := []struct {
		file   string
		format Format
		want   int
	}{
		{"testdata/fluent_seed.jsonl", FormatFluent, 8},
		{"testdata/fluent_seed_pretty.json", FormatFluent, 8},
		{"testdata/akeneo-logs_seed.json", FormatAkeneoLogs, 2},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var events []Event
			err = mustDecoder(t, Options{Format: tc.format}).DecodeObject(f, tc.file, 0, func(r *Result) error {
				if len(r.Errors) > 0 {
					t.Errorf("seed example failed: %v", r.Errors[0])
				}
				events = append(events, r.Events...)
				return nil
			})
			if err != nil || len(events) != tc.want {
				t.Fatalf("decoded %d events (err %v), want %d", len(events), err, tc.want)
			}
			for _, ev := range events {
				if ev.ID == "" || ev.Type == "" || ev.Key == "" || ev.OccurredAt.IsZero() {
					t.Errorf("incomplete event %+v", ev)
				}
			}
		})
	}
}

func TestFluentKeyAndNullName(t *testing.T) {
	tests := []struct{ name, ctx, want string }{
		{"root type and id", `{"rootEntityType":"ORDER","rootEntityId":"2640","rootEntityRef":"HD_561","entityType":"FULFILMENT","entityId":"9"}`, "ORDER:2640"},
		{"root ref when no root id", `{"rootEntityType":"ORDER","rootEntityRef":"HD_561"}`, "ORDER:HD_561"},
		{"entity when no root", `{"entityType":"FULFILMENT","entityId":"9"}`, "FULFILMENT:9"},
		{"event id when no context", `null`, "id-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := `{"id":"id-1","name":null,"type":"ORCHESTRATION_AUDIT","accountId":"TEST","category":"ACTION","context":` + tc.ctx + `,"generatedOn":"2022-03-16T04:03:00.089+0000"}`
			res := decodeRecord(t, Options{Format: FormatFluent}, []byte(data))
			if len(res.Errors) > 0 || len(res.Events) != 1 {
				t.Fatalf("errors %v", res.Errors)
			}
			if got := res.Events[0].Key; got != tc.want {
				t.Errorf("key = %q, want %q", got, tc.want)
			}
			if got := res.Events[0].OccurredAt; !got.Equal(time.Date(2022, 3, 16, 4, 3, 0, 89e6, time.UTC)) {
				t.Errorf("occurred_at = %v", got)
			}
		})
	}
}

func TestInfobipDerivedID(t *testing.T) {
	row := []byte(`{"definitionId":"purchase","personId":"p1","externalPersonId":"x","timestamp":"2024-05-01T10:00:00.123+0000","properties":{}}`)
	pos := Position{Object: "exports/req-events-1-2.json.gz", Line: 7}
	var a, b, c Result
	d := mustDecoder(t, Options{Format: FormatInfobip, Tenant: "acme"})
	d.Decode(&a, row, pos)
	d.Decode(&b, row, pos)
	pos.Line = 8
	d.Decode(&c, row, pos)
	if len(a.Events) != 1 || a.Events[0].ID != b.Events[0].ID {
		t.Fatalf("derived id not stable: %v %v", a.Events, b.Events)
	}
	if a.Events[0].ID == c.Events[0].ID {
		t.Errorf("rows on different lines share id %s", a.Events[0].ID)
	}
	if a.Events[0].Tenant != "acme" || a.Events[0].Key != "p1" {
		t.Errorf("event = %+v", a.Events[0])
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2022-07-13T18:59:43.596191+02:00", time.Date(2022, 7, 13, 16, 59, 43, 596191000, time.UTC), true},
		{"2022-03-16T04:03:00.089+0000", time.Date(2022, 3, 16, 4, 3, 0, 89e6, time.UTC), true},
		{"2024-11-25T16:36:00Z", time.Date(2024, 11, 25, 16, 36, 0, 0, time.UTC), true},
		{"2024-02-01 09:20:39.411067+00:00", time.Date(2024, 2, 1, 9, 20, 39, 411067000, time.UTC), true},
		{"2024-01-01T00:30:00-05", time.Date(2024, 1, 1, 5, 30, 0, 0, time.UTC), true},
		{"2024-02-29T00:00:00.123456789Z", time.Date(2024, 2, 29, 0, 0, 0, 123456789, time.UTC), true},
		{"2023-02-29T00:00:00Z", time.Time{}, false},
		{"2024-11-25T16:36:00", time.Time{}, false},
		{"2024-11-25T24:00:00Z", time.Time{}, false},
		{"2024-11-25T16:36:00.Z", time.Time{}, false},
		{"2024-11-25T16:36:00.1234567890Z", time.Time{}, false},
		{"2024-11-25T16:36:00+2:00", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := parseTime([]byte(tc.in))
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func frames(t *testing.T, input []byte, maxRecord int) (got []string, errs []*Error, streamErr error) {
	t.Helper()
	fr, err := NewFramer(bytes.NewReader(input), maxRecord)
	if err != nil {
		t.Fatal(err)
	}
	for range 100000 {
		f, err := fr.Next()
		var fe *Error
		switch {
		case errors.Is(err, io.EOF):
			return got, errs, streamErr
		case errors.As(err, &fe):
			errs = append(errs, fe)
		case err != nil:
			streamErr = err
		default:
			got = append(got, string(f.Data))
		}
	}
	t.Fatal("framer did not end")
	return
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		want      []string
		wantErrs  []ErrorKind
		wantLines []int64
	}{
		{"json lines", "{\"a\":1}\n{\"b\":2}\n", 0, []string{`{"a":1}`, `{"b":2}`}, nil, nil},
		{"concatenated without separator", `{"a":"}{"}{"b":[{}]}[1]`, 0, []string{`{"a":"}{"}`, `{"b":[{}]}`, `[1]`}, nil, nil},
		{"pretty printed", "{\n  \"a\": {\n    \"b\": 1\n  }\n}\n{\"c\":2}", 0, []string{"{\n  \"a\": {\n    \"b\": 1\n  }\n}", `{"c":2}`}, nil, nil},
		{"crlf and blank lines", "\r\n\r\n{\"a\":1}\r\n\r\n", 0, []string{`{"a":1}`}, nil, nil},
		{"garbage line", "{\"a\":1}\nnot json\n{\"b\":2}\n", 0, []string{`{"a":1}`, `{"b":2}`}, []ErrorKind{KindSyntax}, []int64{2}},
		{"broken line is resynced", "{\"a\":1,\n{\"b\":2}\n{\"c\":3}\n", 0, []string{`{"b":2}`, `{"c":3}`}, []ErrorKind{KindTruncated}, []int64{1}},
		{"line ends inside string", "{\"a\":\"x\n{\"b\":2}\n", 0, []string{`{"b":2}`}, []ErrorKind{KindSyntax}, []int64{1}},
		{"mismatched bracket", "{\"a\":]}\n{\"b\":2}\n", 0, []string{`{"b":2}`}, []ErrorKind{KindSyntax}, []int64{1}},
		{"oversize line then good", "{\"a\":\"" + strings.Repeat("x", 100) + "\"}\n{\"b\":2}\n", 50, []string{`{"b":2}`}, []ErrorKind{KindTooLarge}, []int64{1}},
		{"oversize concatenated then good", "{\"a\":\"" + strings.Repeat("}", 100) + "\"}{\"b\":2}", 50, []string{`{"b":2}`}, []ErrorKind{KindTooLarge}, []int64{1}},
		{"unclosed line swallowing more than the limit", "{\"a\":1,\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n{\"e\":5}\n{\"f\":6}\n{\"g\":7}\n{\"h\":8}\n", 50,
			[]string{`{"b":2}`, `{"c":3}`, `{"d":4}`, `{"e":5}`, `{"f":6}`, `{"g":7}`, `{"h":8}`}, []ErrorKind{KindSyntax}, []int64{1}},
		{"truncated at end", "{\"a\":1}\n{\"b\":", 0, []string{`{"a":1}`}, []ErrorKind{KindTruncated}, []int64{2}},
		{"only whitespace", " \n\t ", 0, nil, nil, nil},
		// A byte order mark at the start is skipped (it made the first
		// record a syntax error); elsewhere it is not JSON.
		{"byte order mark", "\xef\xbb\xbf{\"a\":1}\n{\"b\":2}\n", 0, []string{`{"a":1}`, `{"b":2}`}, nil, nil},
		{"byte order mark alone", "\xef\xbb\xbf", 0, nil, nil, nil},
		{"byte order mark later", "{\"a\":1}\n\xef\xbb\xbf{\"b\":2}\n", 0, []string{`{"a":1}`}, []ErrorKind{KindSyntax}, []int64{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs, serr := frames(t, []byte(tc.in), tc.max)
			if serr != nil {
				t.Fatalf("stream error %v", serr)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("frames = %q, want %q", got, tc.want)
			}
			if !equalKinds(kinds(errs), tc.wantErrs) {
				t.Errorf("errors = %v, want %v", errs, tc.wantErrs)
			}
			for i, l := range tc.wantLines {
				if i < len(errs) && errs[i].Pos.Line != l {
					t.Errorf("error %d on line %d, want %d", i, errs[i].Pos.Line, l)
				}
			}
		})
	}
}

// TestFramerOversizeSize: a too_large value keeps a prefix of the maximum
// size and tells the value's real length (Size), so its dead letter can.
func TestFramerOversizeSize(t *testing.T) {
	value := "{\"a\":\"" + strings.Repeat("x", 100) + "\"}"
	unclosed := "{\"a\":\"" + strings.Repeat("x", 100)
	tests := []struct {
		name, in string
		size     int64
		reason   string
	}{
		{"json line", value + "\n{\"b\":2}\n", int64(len(value)), "the value is 108 bytes"},
		{"concatenated", value + `{"b":2}`, int64(len(value)), "the value is 108 bytes"},
		{"line that never closes", unclosed + "\n{\"b\":2}\n", int64(len(unclosed)), "the line is 106 bytes"},
		{"input ends inside it", unclosed, int64(len(unclosed)), "106 bytes or more"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, serr := frames(t, []byte(tc.in), 50)
			if serr != nil || len(errs) != 1 || errs[0].Kind != KindTooLarge {
				t.Fatalf("errors %v, stream error %v; want one too_large", errs, serr)
			}
			if e := errs[0]; len(e.Raw) != 50 || string(e.Raw) != tc.in[:50] || e.Size != tc.size || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("raw %d bytes, size %d, reason %q; want 50 bytes of the value, size %d, reason with %q", len(e.Raw), e.Size, e.Reason, tc.size, tc.reason)
			}
		})
	}
}

// TestFramerLargeInput crosses many chunk boundaries and checks that earlier
// frames are never overwritten and offsets and lines stay exact.
func TestFramerLargeInput(t *testing.T) {
	var in bytes.Buffer
	var offsets []int64
	for i := range 20000 {
		offsets = append(offsets, int64(in.Len()))
		line := `{"i":` + strings.Repeat(" ", i%97) + `"` + strings.Repeat("v", i%300) + `"}`
		in.WriteString(line)
		if i%3 != 0 {
			in.WriteByte('\n')
		}
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(in.Bytes())
	zw.Close()
	fr, err := NewFramer(&zipped, 0)
	if err != nil {
		t.Fatal(err)
	}
	var all []Frame
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, f)
	}
	if len(all) != len(offsets) {
		t.Fatalf("got %d frames, want %d", len(all), len(offsets))
	}
	for i, f := range all {
		if f.Offset != offsets[i] || !bytes.Equal(f.Data, in.Bytes()[f.Offset:f.Offset+int64(len(f.Data))]) {
			t.Fatalf("frame %d at offset %d does not match the input (want offset %d)", i, f.Offset, offsets[i])
		}
	}
}

func TestTruncatedGzipDeliversPrefix(t *testing.T) {
	f, err := os.Open("testdata/fulfillmenttools_truncated.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int
	var errs []*Error
	err = mustDecoder(t, Options{Format: FormatFulfillmenttools}).DecodeObject(f, "x.json.gz", 0, func(r *Result) error {
		n += len(r.Events)
		errs = append(errs, r.Errors...)
		return nil
	})
	if !IsStreamError(err) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want a stream error wrapping unexpected EOF", err)
	}
	if n == 0 || len(errs) != 1 || errs[0].Kind != KindTruncated || errs[0].Pos.Object != "x.json.gz" {
		t.Errorf("events %d, errors %v: want the good prefix and one truncated value", n, errs)
	}
}

// TestFramerBOMOffsets: after a byte order mark, offsets still count it,
// so positions are offsets in the stored object; a gzip object's mark is
// found after gunzipping.
func TestFramerBOMOffsets(t *testing.T) {
	in := "\xef\xbb\xbf{\"a\":1}\n{\"b\":2}\n"
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(in))
	zw.Close()
	for name, data := range map[string][]byte{"plain": []byte(in), "gzip": z.Bytes()} {
		f, err := NewFramer(bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		first, err := f.Next()
		if err != nil || string(first.Data) != `{"a":1}` || first.Offset != 3 || first.Line != 1 {
			t.Errorf("%s: first frame %q at offset %d line %d (%v), want {\"a\":1} at 3, line 1", name, first.Data, first.Offset, first.Line, err)
		}
		second, err := f.Next()
		if err != nil || second.Offset != 11 || second.Line != 2 {
			t.Errorf("%s: second frame at offset %d line %d (%v), want 11, line 2", name, second.Offset, second.Line, err)
		}
	}
}
