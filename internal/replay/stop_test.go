package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

// stallingStore serves each object up to cut bytes, then waits until the
// object is closed (as the replay does when it stops), like a slow
// download cut short.
type stallingStore struct {
	Store
	cut     int
	reached chan struct{}
}

func (s stallingStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	rc, _, err := s.Store.Open(ctx, key, at)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, "", err
	}
	return &stallingReader{src: b[:s.cut], closed: make(chan struct{}), reached: s.reached}, "", nil
}

type stallingReader struct {
	src     []byte
	closed  chan struct{}
	once    sync.Once
	reached chan struct{}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.src) > 0 {
		n := copy(p, r.src)
		r.src = r.src[n:]
		return n, nil
	}
	select {
	case r.reached <- struct{}{}:
	default:
	}
	<-r.closed
	return 0, errors.New("read on a closed body")
}

func (r *stallingReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// TestReplayStopMidEnvelopeNoDeadLetters: a SIGTERM (the run's context
// ending) while a pretty-printed envelope is half read delivers the
// envelopes before it and sends nothing to the dead-letter topic. The
// independent tester found 251 dead letters from a valid file this way:
// the cut envelope reported truncated, then each of its buffered lines.
func TestReplayStopMidEnvelopeNoDeadLetters(t *testing.T) {
	ev := `{"metadata":{"eventId":"st-%d","type":"UserSignedInEvent","category":"public","aggregateId":"a","tenantId":"t1","occurredTime":"2024-02-01T09:00:00Z"},"payload":{"note":"x"}}`
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "{\n  \"events\": [\n    "+ev+",\n    "+ev+"\n  ]\n}\n", 2*i, 2*i+1)
	}
	x := exportSet{objects: map[string][]byte{"public/2024/02/01/09/export.json": []byte(b.String())}, times: map[string]time.Time{}}
	c, k := newKafka(t)
	store := stallingStore{Store: DirStore{Root: writeDir(t, x)}, cut: b.Len() / 2, reached: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	_, objs, err := Plan(ctx, store, "public/", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := LoadState(filepath.Join(t.TempDir(), "s.json"), []string{"x"}, Window{}, false)
	go func() { <-store.reached; cancel() }()
	sum, err := NewRunner(Options{Concurrency: 1}, k, state, zerolog.Nop()).Run(ctx, []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("run ended with %v before the stop", err)
	}
	if sum.Dead != 0 || sum.Events == 0 {
		t.Errorf("stopped run: %d events, %d dead letters; want the events before the cut and no dead letter", sum.Events, sum.Dead)
	}
	if recs := kafkatest.Consume(t, c.Addrs, "events.dlq", 1, 2*time.Second); len(recs) > 0 {
		t.Errorf("%d dead letters from a valid file, the first %q: %.60q", len(recs), recs[0].Headers[sink.HeaderDLQReason], recs[0].Value)
	}
}
