package replay

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"
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
	if err := s.Flush(); err != nil {
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

// readOffset is what the state file on disk records for obj.
func readOffset(t *testing.T, path, obj string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d stateData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d.InProgress[obj]
}

// TestStateCoalescesWrites: progress coming faster than SaveInterval is
// written once per interval, not once per batch; the timer writes the
// latest progress without another change, and Flush writes it at once.
func TestStateCoalescesWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	s, err := LoadState(path, []string{"d"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	s.every = time.Hour
	for off := int64(1); off <= 50; off++ {
		if err := s.Progress("a", off); err != nil {
			t.Fatal(err)
		}
	}
	// LoadState wrote the new state just now: the first change waits.
	if got := readOffset(t, path, "a"); got != 0 {
		t.Errorf("on disk after 50 changes within the interval: offset %d, want 0 (no write yet)", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readOffset(t, path, "a"); got != 50 {
		t.Errorf("after Flush: offset %d, want 50", got)
	}

	s.mu.Lock()
	s.every = 20 * time.Millisecond
	s.mu.Unlock()
	for off := int64(51); off <= 60; off++ {
		if err := s.Progress("a", off); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, 5*time.Second, "the timer writes the latest offset", func() bool { return readOffset(t, path, "a") == 60 })
}

// TestStateTimerWriteFailure: a write the timer could not make is reported
// by the next change, which writes at once; Flush reports it too.
func TestStateTimerWriteFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "s.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	s, err := LoadState(path, []string{"d"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	// A long interval, so the change below is always deferred however slow
	// the machine; the timer's write is then run by hand (CI once failed
	// when 20 ms passed between LoadState and the change).
	s.every = time.Hour
	os.RemoveAll(filepath.Dir(path))
	if err := s.Progress("a", 1); err != nil {
		t.Fatalf("a change within the interval is written later, got %v", err)
	}
	s.mu.Lock()
	if s.timer == nil {
		s.mu.Unlock()
		t.Fatal("a deferred change armed no timer")
	}
	s.timer.Stop()
	s.mu.Unlock()
	s.tick()
	s.mu.Lock()
	timerErr := s.err
	s.mu.Unlock()
	if timerErr == nil {
		t.Fatal("the timer's write into a missing directory reported no error")
	}
	if err := s.Progress("a", 2); err == nil {
		t.Error("the change after a failed timer write succeeded; want the write error")
	}
	if err := s.Flush(); err == nil {
		t.Error("Flush of an unwritable state succeeded")
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush once the directory is back: %v", err)
	}
	if got := readOffset(t, path, "a"); got != 2 {
		t.Errorf("offset %d on disk, want 2", got)
	}
}
