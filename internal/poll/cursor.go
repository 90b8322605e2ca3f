package poll

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/eventrelay/eventrelay/internal/atomicfile"
	"github.com/eventrelay/eventrelay/internal/envelope"
)

// Cursor is a poller's durable position: the end of the last fully
// delivered window, and the ids (with their timestamps) delivered near it,
// for de-duplication across overlapping windows.
type Cursor struct {
	path string
	// readOnly keeps the changes in memory only (a preview).
	readOnly bool
	mu       sync.Mutex
	d        cursorData
}

type cursorData struct {
	Time time.Time            `json:"time"`
	Seen map[string]time.Time `json:"seen"`
}

// LoadCursor reads the cursor at path ("" keeps it in memory only).
func LoadCursor(path string) (*Cursor, error) {
	c := &Cursor{path: path, d: cursorData{Seen: map[string]time.Time{}}}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the poll cursor: %w", err)
	}
	if err := json.Unmarshal(b, &c.d); err != nil {
		return nil, fmt.Errorf("poll cursor %s is corrupt (%v): remove it to start from source.*.start", path, err)
	}
	if c.d.Seen == nil {
		c.d.Seen = map[string]time.Time{}
	}
	return c, nil
}

// Time is the end of the last fully delivered window.
func (c *Cursor) Time() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d.Time
}

// Seen returns the timestamp an id was delivered with.
func (c *Cursor) Seen(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.d.Seen[id]
	return t, ok
}

// Remember records delivered events and saves.
func (c *Cursor) Remember(evs []envelope.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		c.d.Seen[e.ID] = e.OccurredAt
	}
	return c.save()
}

// Advance moves the cursor to t, forgets ids older than keepFrom, and saves.
func (c *Cursor) Advance(t, keepFrom time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.Time = t
	for id, ts := range c.d.Seen {
		if ts.Before(keepFrom) {
			delete(c.d.Seen, id)
		}
	}
	return c.save()
}

func (c *Cursor) save() error {
	if c.path == "" || c.readOnly {
		return nil
	}
	b, err := json.Marshal(c.d)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.path, b, 0o600); err != nil {
		return fmt.Errorf("writing the poll cursor: %w", err)
	}
	return nil
}
