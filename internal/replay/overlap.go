package replay

import (
	"context"
	"sync"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
)

// Overlap remembers the ids of delivered events that occurred within span
// of the newest one, so a stream started after a backfill can drop the
// events the backfill already delivered. Memory is bounded by the events
// in span, however long the backfill.
type Overlap struct {
	span   time.Duration
	mu     sync.Mutex
	newest time.Time
	ids    map[string]time.Time
}

// NewOverlap remembers ids within span of the newest event.
func NewOverlap(span time.Duration) *Overlap {
	return &Overlap{span: span, ids: map[string]time.Time{}}
}

// Observe records delivered events.
func (o *Overlap) Observe(evs []envelope.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	grew := false
	for _, e := range evs {
		if e.OccurredAt.After(o.newest) {
			o.newest, grew = e.OccurredAt, true
		}
		if !e.OccurredAt.Before(o.newest.Add(-o.span)) {
			o.ids[e.ID] = e.OccurredAt
		}
	}
	if grew && len(o.ids) > 1024 {
		cut := o.newest.Add(-o.span)
		for id, t := range o.ids {
			if t.Before(cut) {
				delete(o.ids, id)
			}
		}
	}
}

// Newest is the latest occurred_at delivered (zero if none).
func (o *Overlap) Newest() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.newest
}

// Contains reports whether id was delivered within span of the newest.
func (o *Overlap) Contains(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.ids[id]
	return ok && !t.Before(o.newest.Add(-o.span))
}

// Recording wraps a sink so every acknowledged batch is observed. It
// keeps only copies (ids, times), so when s says when batch bytes are free
// (sink.WriteFailures) the wrapper says it too, and the replay reuses its
// read buffers as it does without the wrapper.
func (o *Overlap) Recording(s sink.Sink) sink.Sink {
	r := recording{Sink: s, o: o}
	if wf, ok := s.(sink.WriteFailures); ok {
		return recordingFreed{recording: r, wf: wf}
	}
	return r
}

type recording struct {
	sink.Sink
	o *Overlap
}

type recordingFreed struct {
	recording
	wf sink.WriteFailures
}

func (r recordingFreed) WriteFailures() uint64 { return r.wf.WriteFailures() }

func (r recording) Deliver(ctx context.Context, b *sink.Batch) error {
	if err := r.Sink.Deliver(ctx, b); err != nil {
		return err
	}
	r.o.Observe(b.Events)
	return nil
}
