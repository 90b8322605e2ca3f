package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/eventrelay/eventrelay/internal/atomicfile"
)

// State records a replay's progress so an interrupted replay resumes:
// objects completed, and for objects in flight the offset up to which
// every event was acknowledged. It is rewritten atomically and durably
// (internal/atomicfile) after acknowledged batches: at once when the last
// write is SaveInterval old, otherwise SaveInterval after it, covering
// every batch acknowledged meanwhile; Flush writes what is left. A replay
// acknowledging a hundred batches a second thus pays ten writes (each a
// file and a directory fsync), not a hundred, and a kill repeats at most
// the batches in flight and those acknowledged in the last SaveInterval.
type State struct {
	path string
	// every is the least time between two writes (SaveInterval).
	every time.Duration
	mu    sync.Mutex
	d     stateData
	// last is when the state was last written; dirty says it changed
	// since; timer writes it when the change came too soon after last.
	last  time.Time
	dirty bool
	timer *time.Timer
	// err is a failed write of the timer's, returned by the next change.
	err error
}

// SaveInterval is the least time between two writes of a replay state.
const SaveInterval = 100 * time.Millisecond

type stateData struct {
	Version    int                    `json:"version"`
	Sources    []string               `json:"sources"`
	Window     Window                 `json:"window"`
	Completed  map[string]ObjectStats `json:"completed"`
	InProgress map[string]int64       `json:"in_progress"`
	// Versions are the versions (S3 ETag, GCS generation, file size and
	// time) of the objects in progress, so a rerun reads on in the same
	// version or reports the object replaced.
	Versions map[string]string `json:"versions,omitempty"`
	Failed   map[string]string `json:"failed,omitempty"`
}

// ObjectStats is what reading one object produced.
type ObjectStats struct {
	Events  int64 `json:"events"`
	Dead    int64 `json:"dead_letters"`
	Outside int64 `json:"outside_window"`
	Bytes   int64 `json:"bytes"`
}

// LoadState opens the state at path for a replay of sources in window.
// With restart, any previous progress is discarded. A state written by a
// different replay (other sources or window) is an error rather than
// silently mixed.
func LoadState(path string, sources []string, w Window, restart bool) (*State, error) {
	s := &State{path: path, every: SaveInterval, d: stateData{Version: 1, Sources: sources, Window: w,
		Completed: map[string]ObjectStats{}, InProgress: map[string]int64{}, Failed: map[string]string{}}}
	if path == "" || restart {
		return s, s.write()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, s.write()
	}
	if err != nil {
		return nil, fmt.Errorf("reading replay state: %w", err)
	}
	var old stateData
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("replay state %s is corrupt (%v): remove it or use --restart", path, err)
	}
	if !slices.Equal(old.Sources, sources) || !old.Window.From.Equal(w.From) || !old.Window.To.Equal(w.To) {
		return nil, fmt.Errorf("replay state %s belongs to another replay (%v, window %s): give this one another --state (--restart would discard that replay's progress)", path, old.Sources, old.Window)
	}
	if old.Completed == nil {
		old.Completed = map[string]ObjectStats{}
	}
	if old.InProgress == nil {
		old.InProgress = map[string]int64{}
	}
	old.Failed = map[string]string{}
	s.d = old
	return s, nil
}

// Path is where the state is kept ("" when not kept).
func (s *State) Path() string { return s.path }

// Resume says whether obj is done and, if not, from which offset to read.
func (s *State) Resume(obj string) (done bool, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.d.Completed[obj]; ok {
		return true, 0
	}
	return false, s.d.InProgress[obj]
}

// Delivered reports whether earlier runs delivered anything from obj: it
// was completed with events or dead letters, or acknowledged up to an
// offset (progress is recorded only after a delivered batch).
func (s *State) Delivered(obj string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.d.Completed[obj]; ok {
		return st.Events+st.Dead > 0
	}
	return s.d.InProgress[obj] > 0
}

// InProgress lists the objects partly delivered and not completed.
func (s *State) InProgress() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.d.InProgress))
	for id, off := range s.d.InProgress {
		if off > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Version is the version of obj whose progress is recorded ("" unknown).
func (s *State) Version(obj string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d.Versions[obj]
}

// SetVersion notes the version of obj being read; it is written with the
// next progress.
func (s *State) SetVersion(obj, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version == "" {
		delete(s.d.Versions, obj)
		return
	}
	if s.d.Versions == nil {
		s.d.Versions = map[string]string{}
	}
	s.d.Versions[obj] = version
}

// Progress records that everything before offset in obj was acknowledged.
func (s *State) Progress(obj string, offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d.InProgress[obj] = offset
	return s.changed()
}

// Complete records obj as fully read and acknowledged.
func (s *State) Complete(obj string, st ObjectStats) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.d.InProgress, obj)
	delete(s.d.Versions, obj)
	delete(s.d.Failed, obj)
	s.d.Completed[obj] = st
	return s.changed()
}

// Fail records why obj could not be read to its end (its acknowledged
// prefix stays recorded).
func (s *State) Fail(obj, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d.Failed[obj] = reason
	return s.changed()
}

// changed writes the state now if the last write is SaveInterval old (or
// failed), and otherwise has the timer write it; the caller holds mu.
func (s *State) changed() error {
	s.dirty = true
	if wait := s.every - time.Since(s.last); wait > 0 && s.err == nil {
		if s.timer == nil {
			s.timer = time.AfterFunc(wait, s.tick)
		}
		return nil
	}
	return s.write()
}

// tick is the timer's write.
func (s *State) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if s.dirty {
		s.err = s.write()
	}
}

// Flush writes what changed since the last write, at once. The runner
// calls it when a run ends, however it ends.
func (s *State) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if !s.dirty {
		return nil
	}
	return s.write()
}

// write saves the state and notes when; the caller holds mu.
func (s *State) write() error {
	s.last = time.Now()
	if err := s.save(); err != nil {
		return err
	}
	s.dirty, s.err = false, nil
	return nil
}

// save writes the state atomically; the caller holds mu.
func (s *State) save() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.d, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, b, 0o600); err != nil {
		return fmt.Errorf("writing replay state: %w", err)
	}
	return nil
}
