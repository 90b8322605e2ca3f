package poll

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
)

// TestCursorFileAlone: saving the cursor leaves its file alone in the
// directory (no temporary files) and a reload has what was saved.
func TestCursorFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cursor.json")
	c, err := LoadCursor(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		if err := c.Remember([]envelope.Event{{ID: "e" + string(rune('a'+i)), OccurredAt: at}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Advance(at, at); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 || es[0].Name() != "cursor.json" {
		t.Errorf("directory holds %v, want the cursor file alone", es)
	}
	c, err = LoadCursor(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Seen("et"); !ok || !c.Time().Equal(at) {
		t.Errorf("reloaded cursor: time %v, et seen %v", c.Time(), ok)
	}
}
