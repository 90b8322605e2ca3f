package envelope

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// formatOf tells a fixture's format from its name prefix; "mixed" is auto.
func formatOf(name string) Format {
	prefix, _, _ := strings.Cut(name, "_")
	if f, err := ParseFormat(prefix); err == nil {
		return f
	}
	return FormatAuto
}

// render decodes one fixture the way `consumer decode` does and renders
// every event and error as text.
func render(t *testing.T, path string, opts Options) []byte {
	t.Helper()
	d, err := NewDecoder(opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	err = d.DecodeObject(f, filepath.Base(path), 0, func(r *Result) error {
		for i := range r.Events {
			b, err := r.Events[i].MarshalJSON()
			if err != nil {
				return err
			}
			fmt.Fprintf(&out, "event %s\n", b)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(&out, "error kind=%s pos=%s reason=%q raw=%q\n", e.Kind, e.Pos, e.Reason, truncate(e.Raw, 60))
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(&out, "stream-error %v\n", err)
	}
	return out.Bytes()
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*_*")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			got := render(t, in, Options{Format: formatOf(name), Tenant: "acme"})
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (rerun with -update if intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
