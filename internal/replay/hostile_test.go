package replay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// memSink records how often each event id was delivered; hook, when set,
// runs first in every Deliver.
type memSink struct {
	mu   sync.Mutex
	ids  map[string]int
	hook func(ctx context.Context) error
}

func (m *memSink) Deliver(ctx context.Context, b *sink.Batch) error {
	if m.hook != nil {
		if err := m.hook(ctx); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		m.ids = map[string]int{}
	}
	for _, e := range b.Events {
		m.ids[e.ID]++
	}
	return nil
}

func (m *memSink) Close() error { return nil }

// checkOnce fails unless every id of want was delivered exactly once and
// nothing else was.
func (m *memSink) checkOnce(t *testing.T, want map[string]bool) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range want {
		if m.ids[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, m.ids[id])
		}
	}
	for id := range m.ids {
		if !want[id] {
			t.Errorf("event %s delivered, not in the export", id)
		}
	}
}

// syncBuffer is a log destination safe for the run's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// returnsWithin runs fn, failing the test when it has not returned after d (the
// defect: a replay that hangs).
func returnsWithin(t *testing.T, d time.Duration, fn func() (Summary, error)) (Summary, error) {
	t.Helper()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := fn()
		done <- result{sum, err}
	}()
	select {
	case r := <-done:
		return r.sum, r.err
	case <-time.After(d):
		t.Fatalf("the replay did not return within %s", d)
		return Summary{}, nil
	}
}

func dirJob(dir, state string, log io.Writer) *Job {
	return &Job{URLs: []string{dir}, Lateness: AutoLateness, State: state, Target: "test", Log: zerolog.New(log), Registry: prometheus.NewRegistry()}
}

// TestReplaySkipsFIFO: a FIFO among the exports (nothing ever writes to
// it) is skipped with a warning; the replay finishes and delivers the
// regular files. It used to block forever opening the FIFO.
func TestReplaySkipsFIFO(t *testing.T) {
	x := firehoseExport()
	dir := writeDir(t, x)
	if err := syscall.Mkfifo(filepath.Join(dir, "public/2024/02/01/00/eventrelay-export-fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	m := &memSink{}
	job := dirJob(dir, filepath.Join(t.TempDir(), "state.json"), &logs)
	sum, err := returnsWithin(t, 20*time.Second, func() (Summary, error) { return job.Run(context.Background(), m) })
	if err != nil {
		t.Fatal(err)
	}
	m.checkOnce(t, x.idsIn(Window{}))
	if !strings.Contains(logs.String(), "public/2024/02/01/00/eventrelay-export-fifo") || !strings.Contains(logs.String(), "not a regular file") {
		t.Errorf("no warning naming the FIFO in the logs:\n%s", logs.String())
	}
	if sum.Failed != 0 {
		t.Errorf("summary %+v", sum)
	}
}

// stuckStore serves one object whose reads block until it is closed, as a
// FIFO with no writer or a stalled download does.
type stuckStore struct {
	DirStore
	key    string
	opened chan struct{}
}

func (s stuckStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	if key != s.key {
		return s.DirStore.Open(ctx, key, at)
	}
	close(s.opened)
	r, _ := io.Pipe()
	return r, "", nil
}

// TestReplayStuckReadEndsWithCtx: the end of ctx cuts a read blocked on
// an object; the run reports the interruption and does not record the
// object as failed.
func TestReplayStuckReadEndsWithCtx(t *testing.T) {
	x := fulfillmenttoolsExport(1)
	dir := writeDir(t, x)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, objs, err := Plan(ctx, DirStore{Root: dir}, "", LayoutDaily, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	store := stuckStore{DirStore: DirStore{Root: dir}, key: objs[0].Key, opened: make(chan struct{})}
	state, err := LoadState(filepath.Join(t.TempDir(), "state.json"), []string{"x"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-store.opened
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	r := NewRunner(Options{Concurrency: 1, Tenant: "acme"}, &memSink{}, state, zerolog.Nop())
	sum, err := returnsWithin(t, 20*time.Second, func() (Summary, error) {
		return r.Run(ctx, []Source{{Store: store, Objects: objs, Format: envelope.FormatFulfillmenttools}})
	})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("err = %v, want the interruption", err)
	}
	if sum.Failed != 0 || len(state.d.Failed) != 0 {
		t.Errorf("summary %+v, failed %v: the stopped object was recorded as failed", sum, state.d.Failed)
	}
}

// TestReplayStateLocked: a second replay on a state file another replay
// is using is refused (exit 2: ErrInvalid), naming the file; once the
// first ends the state is free again.
func TestReplayStateLocked(t *testing.T) {
	x := fulfillmenttoolsExport(1)
	dir := writeDir(t, x)
	state := filepath.Join(t.TempDir(), "state.json")
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	first := &memSink{hook: func(context.Context) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		j := dirJob(dir, state, io.Discard)
		j.Tenant = "acme"
		_, err := j.Run(context.Background(), first)
		done <- err
	}()
	<-entered
	second := &memSink{}
	j := dirJob(dir, state, io.Discard)
	j.Tenant = "acme"
	_, err := returnsWithin(t, 20*time.Second, func() (Summary, error) { return j.Run(context.Background(), second) })
	close(release)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "another replay") {
		t.Errorf("second replay: err = %v, want it refused naming %s", err, state)
	}
	if len(second.ids) != 0 {
		t.Errorf("the refused replay delivered %d events", len(second.ids))
	}
	if err := <-done; err != nil {
		t.Fatalf("first replay: %v", err)
	}
	first.checkOnce(t, x.idsIn(Window{}))
	j = dirJob(dir, state, io.Discard)
	j.Tenant = "acme"
	if _, err := j.Run(context.Background(), second); err != nil {
		t.Errorf("a replay after the first ended: %v", err)
	}
}

// stopDuring cancels the run while its n-th batch is being delivered; the
// batch reaches Kafka, and its acknowledgement is lost if the delivery's
// context ended meanwhile.
type stopDuring struct {
	sink.Sink
	mu     sync.Mutex
	n      int
	cancel func()
}

func (s *stopDuring) Deliver(ctx context.Context, b *sink.Batch) error {
	s.mu.Lock()
	if s.n--; s.n == 0 {
		s.cancel()
	}
	s.mu.Unlock()
	if err := s.Sink.Deliver(context.WithoutCancel(ctx), b); err != nil {
		return err
	}
	return ctx.Err()
}

// TestReplayGracefulStop: cancelling a replay (SIGTERM) stops the reading
// and delivers and records what was in flight: the resumed replay sends
// the rest, nothing twice, and the first run logs only "replay
// interrupted".
func TestReplayGracefulStop(t *testing.T) {
	x := firehoseExport()
	dir := writeDir(t, x)
	c, k := newKafka(t)
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	j := dirJob(dir, state, &logs)
	j.Concurrency, j.BatchSize = 2, 2
	sum1, err := j.Run(ctx, &stopDuring{Sink: k, n: 10, cancel: cancel})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("first run: err = %v, want interrupted", err)
	}
	if l := logs.String(); !strings.Contains(l, "replay interrupted") || strings.Contains(l, "replay finished") {
		t.Errorf("first run logs, want \"replay interrupted\" and no \"replay finished\":\n%s", l)
	}
	j = dirJob(dir, state, io.Discard)
	j.Concurrency, j.BatchSize = 2, 2
	sum2, err := j.Run(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	want := x.idsIn(Window{})
	checkExactly(t, c, "events.onewelcome", want)
	if got := sum1.Events + sum2.Events; got != int64(len(want)) || sum1.Events == 0 {
		t.Errorf("delivered %d + %d events, want %d in all", sum1.Events, sum2.Events, len(want))
	}
}

// TestReplayObjectShrank: a state offset past the end of an object (it
// was replaced by a shorter one) fails the object with the reason instead
// of marking it complete with nothing delivered.
func TestReplayObjectShrank(t *testing.T) {
	x := fulfillmenttoolsExport(1)
	store := DirStore{Root: writeDir(t, x)}
	_, objs, err := Plan(context.Background(), store, "", LayoutDaily, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	state, err := LoadState(path, []string{"x"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	shrunk := store.Name() + "/" + objs[0].Key
	if err := state.Progress(shrunk, objs[0].Size*100); err != nil {
		t.Fatal(err)
	}
	sum, err := NewRunner(Options{Tenant: "acme"}, &memSink{}, state, zerolog.Nop()).
		Run(context.Background(), []Source{{Store: store, Objects: objs, Format: envelope.FormatFulfillmenttools}})
	if err == nil || !strings.Contains(err.Error(), "shrank") || !strings.Contains(err.Error(), objs[0].Key) {
		t.Fatalf("err = %v, want the object named as shrunk", err)
	}
	if sum.Failed != 1 || sum.Objects != len(objs)-1 {
		t.Errorf("summary %+v, want the shrunk object failed and the others done", sum)
	}
	state, err = LoadState(path, []string{"x"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := state.Resume(shrunk); done {
		t.Error("the shrunk object is recorded as complete")
	}
}
