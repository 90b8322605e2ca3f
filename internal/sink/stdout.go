package sink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/prometheus/client_golang/prometheus"
)

// Stdout prints each event as one JSON line (the shape of `consumer
// decode`) and each dead letter as {"dead_letter":{...}}. For dry runs.
type Stdout struct {
	mu sync.Mutex
	w  *bufio.Writer
	m  *metrics
}

// NewStdout returns a sink writing to w. reg may be nil.
func NewStdout(w io.Writer, reg prometheus.Registerer) *Stdout {
	return &Stdout{w: bufio.NewWriterSize(w, 64<<10), m: newMetrics(reg)}
}

type deadJSON struct {
	Format    envelope.Format   `json:"format"`
	Kind      string            `json:"kind"`
	Reason    string            `json:"reason"`
	Position  envelope.Position `json:"position"`
	Raw       string            `json:"raw,omitempty"`
	RawBase64 []byte            `json:"raw_base64,omitempty"`
	// TruncatedFrom is the record's length when raw is only its prefix.
	TruncatedFrom int64 `json:"truncated_from,omitempty"`
}

// Deliver writes the batch and flushes; it is acknowledged once written.
// WriteFailures implements WriteFailures: events are encoded (copied)
// before Deliver returns, whatever happens.
func (s *Stdout) WriteFailures() uint64 { return 0 }

func (s *Stdout) Deliver(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Events {
		line, err := b.Events[i].MarshalJSON()
		if err != nil {
			return fmt.Errorf("encoding event %s: %w", b.Events[i].ID, err)
		}
		s.w.Write(line)
		s.w.WriteByte('\n')
	}
	for i := range b.Dead {
		d := &b.Dead[i]
		dj := deadJSON{Format: d.Format, Kind: d.Kind, Reason: d.Reason, Position: d.Pos}
		if d.Size > int64(len(d.Raw)) {
			dj.TruncatedFrom = d.Size
		}
		if utf8.Valid(d.Raw) {
			dj.Raw = string(d.Raw)
		} else {
			dj.RawBase64 = d.Raw
		}
		line, err := json.Marshal(map[string]deadJSON{"dead_letter": dj})
		if err != nil {
			return fmt.Errorf("encoding dead letter: %w", err)
		}
		s.w.Write(line)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	s.m.acked(b)
	return nil
}

// Close flushes the output.
func (s *Stdout) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}
