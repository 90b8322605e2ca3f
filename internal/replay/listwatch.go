package replay

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// listWatch is a store whose listing answers are watched while a URL is
// planned: watch warns while none arrives, as the progress report does
// once objects are read (a stalled store otherwise keeps a replay silent
// until the SDK gives up).
type listWatch struct {
	Store
	moved  atomic.Int64 // unix nanos of the last answer
	listed atomic.Int64 // objects and folders listed
}

func newListWatch(s Store) *listWatch {
	w := &listWatch{Store: s}
	w.moved.Store(time.Now().UnixNano())
	return w
}

// List implements Store.
func (w *listWatch) List(ctx context.Context, prefix string, fn func(Object) error) error {
	return w.Store.List(ctx, prefix, func(o Object) error {
		w.listed.Add(1)
		w.moved.Store(time.Now().UnixNano())
		return fn(o)
	})
}

// Dirs implements Store.
func (w *listWatch) Dirs(ctx context.Context, prefix string) ([]string, error) {
	d, err := w.Store.Dirs(ctx, prefix)
	w.listed.Add(int64(len(d)))
	w.moved.Store(time.Now().UnixNano())
	return d, err
}

// watch warns every stallAfter while no listing answer arrives, until the
// returned stop is called.
func (w *listWatch) watch(source string, stallAfter time.Duration, log zerolog.Logger) (stop func()) {
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(min(time.Second, stallAfter/4))
		defer tick.Stop()
		var warned time.Time
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				quiet := now.Sub(time.Unix(0, w.moved.Load()))
				if quiet >= stallAfter && now.Sub(warned) >= stallAfter {
					warned = now
					log.Warn().Str("source", source).Stringer("waiting_for", quiet.Round(time.Second)).Int64("listed", w.listed.Load()).
						Msg("listing made no progress: the store does not answer (the request is retried until it gives up)")
				}
			}
		}
	}()
	return func() { close(done) }
}
