package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const infobipExport = fixtures + "infobip-export/b2c7e5d0a1f34c8e-events-20240501T100000Z-20240501T110000Z.json.gz"

// decodedIDs runs `consumer decode` and returns the printed events' ids.
func decodedIDs(t *testing.T, stdin string, args ...string) []string {
	t.Helper()
	code, stdout, stderr := runCLI(t, stdin, append([]string{"decode", "--format", "infobip"}, args...)...)
	if code != exitOK {
		t.Fatalf("decode %v: exit %d: %s", args, code, stderr)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var ev struct{ ID string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("bad output line %q: %v", l, err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// TestDecodeDerivedIDsIgnorePathSpelling: `consumer decode data/x.json.gz`,
// `./data/x.json.gz` and `$PWD/data/x.json.gz` print the same derived ids.
func TestDecodeDerivedIDsIgnorePathSpelling(t *testing.T) {
	abs, err := filepath.Abs(infobipExport)
	if err != nil {
		t.Fatal(err)
	}
	want := decodedIDs(t, "", infobipExport)
	if len(want) != 4 {
		t.Fatalf("want 4 events, got %v", want)
	}
	for _, p := range []string{"./" + infobipExport, abs, filepath.Clean(infobipExport)} {
		if got := decodedIDs(t, "", p); !slices.Equal(got, want) {
			t.Errorf("decode %s: ids %v, want %v", p, got, want)
		}
	}
	gz, err := os.ReadFile(infobipExport)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodedIDs(t, string(gz), "--stdin-name", filepath.Base(infobipExport)); !slices.Equal(got, want) {
		t.Errorf("stdin named %s: ids %v, want %v", filepath.Base(infobipExport), got, want)
	}
}

// TestDecodeKeepsRawBytes: "raw" is the vendor's event as read — '<', '>',
// '&', U+2028 and the vendor's own escapes are not re-escaped — except that
// a pretty-printed event loses the whitespace between its tokens; --output
// raw prints the events exactly as read.
func TestDecodeKeepsRawBytes(t *testing.T) {
	const file = fixtures + "fluent_escapes.json"
	in, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(in), "\n", 3)
	var pretty bytes.Buffer
	if err := json.Compact(&pretty, []byte(lines[2])); err != nil {
		t.Fatal(err)
	}
	want := []string{lines[0], lines[1], pretty.String()}

	code, stdout, stderr := runCLI(t, "", "decode", file)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(out) != len(want) {
		t.Fatalf("%d output lines, want %d:\n%s", len(out), len(want), stdout)
	}
	for i, l := range out {
		var ev struct{ Raw json.RawMessage }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, l)
		}
		if string(ev.Raw) != want[i] {
			t.Errorf("event %d: raw\n%s\nwant\n%s", i+1, ev.Raw, want[i])
		}
	}

	code, stdout, stderr = runCLI(t, "", "decode", "--output", "raw", file)
	if code != exitOK || stdout != string(in) {
		t.Errorf("--output raw: exit %d, stderr %s, output\n%q\nwant the input\n%q", code, stderr, stdout, in)
	}
}
