package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

// addSeeds adds every fixture line and a few hostile inputs to the corpus.
func addSeeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for _, line := range bytes.Split(data, []byte("\n")) {
			f.Add(line)
		}
	}
	for _, s := range []string{"", "{", "[]", `{"events":[`, `{"events":[{}]}`, "{\"a\":\"\xff\"}", `{"\u0000":"\ud800"}`} {
		f.Add([]byte(s))
	}
}

// checkDecode is the invariant every decoder must keep on any input: no
// panic; every event is well-formed UTF-8 JSON taken unchanged from the
// input, with an id, a type and a UTC time; every error has a reason.
func checkDecode(t *testing.T, format Format, data []byte) {
	var res Result
	d, err := NewDecoder(Options{Format: format, Tenant: "t"})
	if err != nil {
		t.Fatal(err)
	}
	d.Decode(&res, data, Position{Object: "fuzz", Line: 1})
	for _, ev := range res.Events {
		if !json.Valid(ev.Raw) || !utf8.Valid(ev.Raw) {
			t.Fatalf("event raw is not valid JSON: %q", ev.Raw)
		}
		off := ev.Pos.Offset
		if off < 0 || off+int64(len(ev.Raw)) > int64(len(data)) || !bytes.Equal(data[off:off+int64(len(ev.Raw))], ev.Raw) {
			t.Fatalf("event raw is not the input at offset %d", off)
		}
		if ev.ID == "" || ev.Type == "" || ev.OccurredAt.Location() != time.UTC || ev.Source == "" {
			t.Fatalf("incomplete event %+v", ev)
		}
	}
	for _, e := range res.Errors {
		if e.Reason == "" || e.Kind == "" {
			t.Fatalf("error without reason: %+v", e)
		}
	}
	if len(res.Events)+len(res.Errors) == 0 && !isEmptyEnvelope(data) {
		t.Fatalf("input produced neither events nor errors: %q", data)
	}
	if len(res.Events) > 0 && res.Events[0].Source != FormatOneWelcome && !json.Valid(data) {
		t.Fatalf("single-event format accepted invalid JSON %q", data)
	}
}

// isEmptyEnvelope reports a valid envelope with no events, which rightly
// yields nothing.
func isEmptyEnvelope(data []byte) bool {
	var v struct {
		Events []json.RawMessage `json:"events"`
	}
	return json.Valid(data) && json.Unmarshal(data, &v) == nil && v.Events != nil && len(v.Events) == 0
}

func FuzzOneWelcome(f *testing.F) {
	addSeeds(f, "testdata/onewelcome_*")
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatOneWelcome, data) })
}

func FuzzFulfillmenttools(f *testing.F) {
	addSeeds(f, "testdata/fulfillmenttools_000000000000.json.gz")
	f.Add([]byte(`{"id":"a","eventName":"e","payload":{"id":"k"},"created":"2024-02-01T09:20:39.411067+00:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatFulfillmenttools, data) })
}

func FuzzInfobip(f *testing.F) {
	f.Add([]byte(`{"definitionId":"purchase","personId":"p","externalPersonId":"x","timestamp":"2024-05-01T10:00:00.123+0000","properties":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatInfobip, data) })
}

func FuzzFluent(f *testing.F) {
	addSeeds(f, "testdata/fluent_*")
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatFluent, data) })
}

func FuzzAkeneoLogs(f *testing.F) {
	addSeeds(f, "testdata/akeneo-logs_*")
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatAkeneoLogs, data) })
}

func FuzzCloudEvents(f *testing.F) {
	addSeeds(f, "testdata/cloudevents_*")
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatCloudEvents, data) })
}

func FuzzAuto(f *testing.F) {
	addSeeds(f, "testdata/*_*")
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, FormatAuto, data) })
}

// FuzzFramer checks that framing any input terminates, reports every byte
// either in a frame or in an error, and keeps frames equal to the input.
func FuzzFramer(f *testing.F) {
	addSeeds(f, "testdata/*_*")
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := NewFramer(bytes.NewReader(data), 64)
		if err != nil {
			return
		}
		plain := data
		if IsGzip(data) {
			return // the gzip layer is the standard library's; framing is checked on plain input
		}
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("framer did not end after %d calls", i)
			}
			fm, err := fr.Next()
			if err != nil {
				if _, ok := err.(*Error); ok {
					continue
				}
				return
			}
			if len(fm.Data) > 64 || !bytes.Equal(plain[fm.Offset:fm.Offset+int64(len(fm.Data))], fm.Data) {
				t.Fatalf("frame %q at %d is not the input", fm.Data, fm.Offset)
			}
		}
	})
}

// FuzzAppendTime: AppendTime renders every instant as
// t.UTC().AppendFormat(TimeLayout) does, in any zone.
func FuzzAppendTime(f *testing.F) {
	for _, s := range []int64{0, 1706778000, 1706778000123456789, -62135596800, 253402300799, 253402300800, -62135596801} {
		f.Add(s/1e9, s%1e9, int32(3600))
	}
	f.Add(int64(1706778000), int64(100), int32(-5*3600))
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int32) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("z", int(offset%(18*3600))))
		want := tm.UTC().AppendFormat([]byte("x"), TimeLayout)
		if got := AppendTime([]byte("x"), tm); string(got) != string(want) {
			t.Fatalf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}
