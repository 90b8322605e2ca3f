package envelope

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// infobipExport is an Infobip People export written from seed 001: named as
// Infobip names its files, rows with only the documented mandatory fields
// (no id of any kind).
const infobipExport = "b2c7e5d0a1f34c8e-events-20240501T100000Z-20240501T110000Z.json.gz"

// derivedIDs decodes data as object and returns the events' ids.
func derivedIDs(t *testing.T, data []byte, object string) []string {
	t.Helper()
	d := mustDecoder(t, Options{Format: FormatInfobip, Tenant: "acme"})
	var ids []string
	err := d.DecodeObject(bytes.NewReader(data), object, 0, func(r *Result) error {
		for _, e := range r.Errors {
			t.Errorf("%s: %v", object, e)
		}
		for _, e := range r.Events {
			ids = append(ids, e.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestInfobipDerivedIDIgnoresPath decodes one export under every name a
// user or a replay gives it: the ids must depend on the file, not on how
// its path was spelled or where it is stored.
func TestInfobipDerivedIDIgnoresPath(t *testing.T) {
	rel := filepath.Join("testdata", "infobip-export", infobipExport)
	gz, err := os.ReadFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	want := derivedIDs(t, gz, infobipExport)
	if len(want) != 4 || len(slices.Compact(slices.Clone(want))) != 4 {
		t.Fatalf("want 4 distinct ids, got %v", want)
	}
	spellings := []struct {
		how, object string
		data        []byte
	}{
		{"relative path", rel, gz},
		{"dot-relative path", "./" + rel, gz},
		{"absolute path", abs, gz},
		{"dir replay key", "infobip-export/" + infobipExport, gz},
		{"s3 key with prefix", "people/exports/2024/05/" + infobipExport, gz},
		{"decompressed by the user", "data/" + infobipExport[:len(infobipExport)-len(".gz")], plain},
	}
	for _, s := range spellings {
		if got := derivedIDs(t, s.data, s.object); !slices.Equal(got, want) {
			t.Errorf("%s %q: ids %v, want %v", s.how, s.object, got, want)
		}
	}
	// Another export (another request id) must not reuse the ids.
	other := derivedIDs(t, gz, "people/exports/c0ffee00c0ffee00-events-20240501T100000Z-20240501T110000Z.json.gz")
	for i := range other {
		if other[i] == want[i] {
			t.Errorf("row %d of two different exports share id %s", i+1, other[i])
		}
	}
}

func TestDerivedIDObjectName(t *testing.T) {
	tests := []struct{ object, want string }{
		{"r-events-1-2.json.gz", "r-events-1-2.json"},
		{"a/b/r-events-1-2.json.gz", "r-events-1-2.json"},
		{"/abs/./r-events-1-2.json", "r-events-1-2.json"},
		{"r-events-1-2.json.GZ", "r-events-1-2.json"},
		{"-", "-"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := derivedIDName(tc.object); got != tc.want {
			t.Errorf("derivedIDName(%q) = %q, want %q", tc.object, got, tc.want)
		}
	}
}
