package replay

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStateFileAlone: saving progress leaves the state file alone in its
// directory (no temporary files) and a reload resumes from it.
func TestStateFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replay-state.json")
	w := Window{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	s, err := LoadState(path, []string{"s3://b/p"}, w, false)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(1); off <= 50; off++ {
		if err := s.Progress("a.json.gz", off*100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Complete("b.json.gz", ObjectStats{Events: 3}); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 || es[0].Name() != "replay-state.json" {
		t.Errorf("directory holds %v, want the state file alone", es)
	}
	s, err = LoadState(path, []string{"s3://b/p"}, w, false)
	if err != nil {
		t.Fatal(err)
	}
	if done, off := s.Resume("a.json.gz"); done || off != 5000 {
		t.Errorf("a.json.gz: done %v, offset %d; want 5000", done, off)
	}
	if done, _ := s.Resume("b.json.gz"); !done {
		t.Error("b.json.gz not done after reload")
	}
}
