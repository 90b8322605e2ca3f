package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/eventrelay/eventrelay/internal/testwait"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// scriptSink is a sink whose deliveries are released by the test: each
// batch (named by its first event id) waits on its gate, so deliveries can
// finish in any order. It records what was written, in order.
type scriptSink struct {
	mu      sync.Mutex
	gates   map[string]chan error
	written []string // event ids, in write order
	active  int
	maxAct  int
}

func newScriptSink() *scriptSink { return &scriptSink{gates: map[string]chan error{}} }

func (s *scriptSink) gate(id string) chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gates[id] == nil {
		s.gates[id] = make(chan error, 4)
	}
	return s.gates[id]
}

func (s *scriptSink) Deliver(ctx context.Context, b *sink.Batch) error {
	s.mu.Lock()
	s.active++
	s.maxAct = max(s.maxAct, s.active)
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.active--; s.mu.Unlock() }()
	var err error
	select {
	case err = <-s.gate(b.Events[0].ID):
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(err, errRetried) {
		b.Retried, err = true, nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, e := range b.Events {
		s.written = append(s.written, e.ID)
	}
	s.mu.Unlock()
	return nil
}

func (s *scriptSink) Close() error { return nil }

func (s *scriptSink) activeNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

var errRetried = errors.New("delivered after a retry")

func unit(id string, acks *[]string, mu *sync.Mutex) *Unit {
	return &Unit{Events: []envelope.Event{{ID: id, Key: "k"}}, Ack: func(context.Context, Acked) error {
		mu.Lock()
		*acks = append(*acks, id)
		mu.Unlock()
		return nil
	}}
}

// TestAcksInOrder: four units are delivered at once and finish in reverse
// order; their acknowledgements (checkpoints) still run strictly in
// submission order, and none runs before its unit was delivered.
func TestAcksInOrder(t *testing.T) {
	s := newScriptSink()
	p := New(s, Options{InFlight: 4})
	var acks []string
	var mu sync.Mutex
	ctx := context.Background()
	ids := []string{"u0", "u1", "u2", "u3"}
	for _, id := range ids[:3] {
		if err := p.Submit(ctx, unit(id, &acks, &mu)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.Submit(ctx, unit("u3", &acks, &mu)) }() // blocks: 4 in flight
	for deadline := time.Now().Add(5 * time.Second); s.activeNow() < 4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d deliveries running at once, want 4 (InFlight)", s.activeNow())
		}
	}
	for i := len(ids) - 1; i >= 1; i-- {
		s.gate(ids[i]) <- nil
	}
	time.Sleep(50 * time.Millisecond) // u1..u3 delivered; give a wrong ack the chance to run
	mu.Lock()
	early := append([]string(nil), acks...)
	mu.Unlock()
	if len(early) != 0 {
		t.Fatalf("acknowledged %v while u0 was still in flight", early)
	}
	s.gate("u0") <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Join(acks, ",") != "u0,u1,u2,u3" {
		t.Errorf("acks ran in order %v", acks)
	}
	if s.maxAct != 4 {
		t.Errorf("at most %d deliveries ran at once, want 4 (InFlight)", s.maxAct)
	}
}

// TestFailureStopsAcks: when a unit's delivery fails for good (a missing
// topic), no later unit is acknowledged, even one already delivered, and
// Submit and Flush report the failure.
func TestFailureStopsAcks(t *testing.T) {
	s := newScriptSink()
	p := New(s, Options{InFlight: 3})
	var acks []string
	var mu sync.Mutex
	ctx := context.Background()
	s.gate("u0") <- nil
	s.gate("u1") <- &sink.TopicMissingError{Topics: []string{"events.x"}}
	s.gate("u2") <- nil
	for _, id := range []string{"u0", "u1", "u2"} {
		if err := p.Submit(ctx, unit(id, &acks, &mu)); err != nil && id != "u2" {
			t.Fatal(err)
		}
	}
	err := p.Flush(ctx)
	if !errors.Is(err, sink.ErrTopicMissing) {
		t.Fatalf("Flush = %v, want the missing topic", err)
	}
	if strings.Join(acks, ",") != "u0" {
		t.Errorf("acks %v, want only u0", acks)
	}
	if err := p.Submit(ctx, unit("u3", &acks, &mu)); !errors.Is(err, sink.ErrTopicMissing) {
		t.Errorf("Submit after the failure = %v", err)
	}
}

// TestResendAfterRetry: u0 needed a retry while u1 (same key) was in flight
// and already written, so u1 may sit before u0's final copy; u1 is written
// again after u0, keeping the last copy of each key's messages in order.
func TestResendAfterRetry(t *testing.T) {
	s := newScriptSink()
	p := New(s, Options{InFlight: 4})
	var acks []string
	var mu sync.Mutex
	ctx := context.Background()
	s.gate("u1") <- nil
	s.gate("u1") <- nil // for the re-send
	s.gate("u2") <- nil
	s.gate("u2") <- nil
	for _, id := range []string{"u0", "u1", "u2"} {
		if err := p.Submit(ctx, unit(id, &acks, &mu)); err != nil {
			t.Fatal(err)
		}
	}
	// u1 and u2 written before u0 (waited for, not slept on: a loaded
	// machine may take longer than any fixed pause).
	testwait.Until(t, 5*time.Second, "u1 and u2 written", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.written) == 2 })
	s.gate("u0") <- errRetried
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.written, ",")
	if len(s.written) != 5 || !strings.HasSuffix(got, ",u0,u1,u2") {
		t.Errorf("writes %s, want u1 and u2, then u0, then u1,u2 again (the units after a retried one written again after it)", got)
	}
	if strings.Join(acks, ",") != "u0,u1,u2" {
		t.Errorf("acks %v", acks)
	}
}

// listSource yields prepared units, then io.EOF.
type listSource struct{ units []*Unit }

func (l *listSource) Next(context.Context) (*Unit, error) {
	if len(l.units) == 0 {
		return nil, io.EOF
	}
	u := l.units[0]
	l.units = l.units[1:]
	return u, nil
}

// TestDecodeErrorsAndFilter: every source's decode errors become dead
// letters with the same metric and log line; the filter drops events
// before delivery and is counted.
func TestDecodeErrorsAndFilter(t *testing.T) {
	var got []sink.Batch
	var mu sync.Mutex
	s := sinkFunc(func(_ context.Context, b *sink.Batch) error {
		mu.Lock()
		got = append(got, sink.Batch{Events: append([]envelope.Event(nil), b.Events...), Dead: append([]sink.DeadLetter(nil), b.Dead...)})
		mu.Unlock()
		return nil
	})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if NewMetrics(reg) == nil { // registering twice reuses the series
		t.Fatal("second NewMetrics")
	}
	var logs bytes.Buffer
	var acked Acked
	bad := &envelope.Error{Format: envelope.FormatOneWelcome, Kind: envelope.KindSyntax, Reason: "syntax: bad", Raw: []byte("{x"), Pos: envelope.Position{Object: "o", Line: 3}}
	src := &listSource{units: []*Unit{{
		Events: []envelope.Event{{ID: "keep"}, {ID: "drop"}},
		Errors: []*envelope.Error{bad},
		Ack:    func(_ context.Context, a Acked) error { acked = a; return nil },
	}}}
	err := Run(context.Background(), s, Options{Source: "replay", Keep: func(e *envelope.Event) bool { return e.ID == "keep" },
		Log: zerolog.New(&logs), Metrics: m}, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].ID != "keep" || len(got[0].Dead) != 1 || string(got[0].Dead[0].Raw) != "{x" {
		t.Fatalf("delivered %+v", got)
	}
	if acked != (Acked{Events: 1, Dead: 1}) {
		t.Errorf("acked %+v", acked)
	}
	if n := testutil.ToFloat64(m.decodeErrors.WithLabelValues("replay", "syntax")); n != 1 {
		t.Errorf("eventrelay_pipeline_decode_errors_total{source=replay,kind=syntax} = %v", n)
	}
	if n := testutil.ToFloat64(m.filteredN.WithLabelValues("replay")); n != 1 {
		t.Errorf("filtered = %v", n)
	}
	line := logs.String()
	for _, want := range []string{`"source":"replay"`, `"records":1`, `"position":"o:3@0#0"`, `"kind":"syntax"`, `records sent to the dead-letter topic`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %s", line, want)
		}
	}
}

// TestRunSourceError: a source error (a corrupt object) comes after the
// units before it were delivered and acknowledged.
func TestRunSourceError(t *testing.T) {
	acked := 0
	s := sinkFunc(func(context.Context, *sink.Batch) error { return nil })
	broken := errors.New("unexpected EOF")
	calls := 0
	src := sourceFunc(func(context.Context) (*Unit, error) {
		if calls++; calls > 1 {
			return nil, broken
		}
		return &Unit{Events: []envelope.Event{{ID: "a"}}, Ack: func(context.Context, Acked) error { acked++; return nil }}, nil
	})
	if err := Run(context.Background(), s, Options{}, src); !errors.Is(err, broken) || acked != 1 {
		t.Errorf("Run = %v with %d acks, want the source error after 1 ack", err, acked)
	}
}

type sinkFunc func(context.Context, *sink.Batch) error

func (f sinkFunc) Deliver(ctx context.Context, b *sink.Batch) error { return f(ctx, b) }
func (f sinkFunc) Close() error                                     { return nil }

type sourceFunc func(context.Context) (*Unit, error)

func (f sourceFunc) Next(ctx context.Context) (*Unit, error) { return f(ctx) }

// TestBadRecordsSummarised: 5,000 bad fragments of one object (a file of
// random bytes) are 5,000 dead letters but one log line, with the count,
// the kinds and the first one's position and reason. Before, each was a
// warning of its own.
func TestBadRecordsSummarised(t *testing.T) {
	var dead int
	s := sinkFunc(func(_ context.Context, b *sink.Batch) error { dead += len(b.Dead); return nil })
	var logs bytes.Buffer
	var units []*Unit
	for u := range 5 {
		var errs []*envelope.Error
		for i := range 1000 {
			kind := envelope.KindSyntax
			if i%10 == 0 {
				kind = envelope.KindTooLarge
			}
			errs = append(errs, &envelope.Error{Format: envelope.FormatOneWelcome, Kind: kind, Reason: "bad", Raw: []byte{byte(i)}, Pos: envelope.Position{Object: "random.bin", Line: int64(u*1000 + i + 1)}})
		}
		units = append(units, &Unit{Errors: errs})
	}
	if err := Run(context.Background(), s, Options{Source: "replay", Log: zerolog.New(&logs)}, &listSource{units: units}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if dead != 5000 || len(lines) != 1 {
		t.Fatalf("%d dead letters, %d log lines, want 5000 and 1:\n%s", dead, len(lines), logs.String())
	}
	for _, want := range []string{`"records":5000`, `"kinds":"syntax:4500,too_large:500"`, `"position":"random.bin:1@0#0"`, `"last_position":"random.bin:5000@0#0"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("summary %s lacks %s", lines[0], want)
		}
	}
}
