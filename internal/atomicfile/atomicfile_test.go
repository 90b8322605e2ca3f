package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

// TestWriteLeavesOnlyTheFile: after writes that create, replace and fail,
// the directory holds the target alone, with the last written content and
// the permissions asked for.
func TestWriteLeavesOnlyTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for i, content := range []string{`{"v":1}`, `{"v":2,"more":"longer than before"}`, `{}`} {
		if err := Write(path, []byte(content), 0o600); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Fatalf("write %d: file holds %q", i, b)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"state.json"}) {
		t.Errorf("directory holds %v, want only state.json", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// A failed rename (the target is a non-empty directory) removes the
	// temporary file and leaves the target alone.
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "inside"), 0o700)
	if err := Write(blocked, []byte("x"), 0o600); err == nil {
		t.Fatal("writing over a directory worked")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"blocked", "state.json"}) {
		t.Errorf("after a failed write the directory holds %v", got)
	}
	if err := Write(filepath.Join(dir, "missing", "state.json"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing directory worked")
	}
}

// TestWriteIsAlwaysComplete: a reader racing a writer only ever sees one
// whole version, never a truncated or mixed file or none.
func TestWriteIsAlwaysComplete(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 64<<10)}
	if err := Write(path, versions[0], 0o600); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for i := range 200 {
			if err := Write(path, versions[i%2], 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for !done.Load() {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if !bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1]) {
			t.Fatalf("read %d: %d bytes, not a whole version", reads, len(b))
		}
		reads++
	}
	wg.Wait()
	if got := names(t, dir); !slices.Equal(got, []string{"state.json"}) {
		t.Errorf("directory holds %v, want only state.json", got)
	}
	t.Logf("%d reads during 200 writes", reads)
}

// BenchmarkWrite is the cost of one durable state save (a 2 KiB file:
// write, two fsyncs, rename).
func BenchmarkWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.json")
	data := bytes.Repeat([]byte("x"), 2<<10)
	for b.Loop() {
		if err := Write(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}
