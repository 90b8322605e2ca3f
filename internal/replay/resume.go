package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/retry"
	"github.com/rs/zerolog"
)

// DefaultReadStall is how long one read of an object's body may wait for
// bytes before the store is taken for stalled (a peer that keeps the
// connection open and sends nothing): the connection is dropped and the
// read goes on from the same byte on a new one. Time between reads (the
// replay waiting for Kafka) does not count.
const DefaultReadStall = 30 * time.Second

// readResumes is how many times in a row a read may fail, with less than
// resumeProgress bytes read in between (a connection that delivers a byte
// and fails does not count as recovered), before the object fails.
const (
	readResumes    = 5
	resumeProgress = 64 << 10
)

// errReadStalled is a read that waited longer than the stall limit.
var errReadStalled = errors.New("no bytes arrived")

// resumingReader reads an object's stored bytes, and when the connection
// fails mid-body (reset, closed early, stalled) opens the object again
// from the byte it stopped at, the same version of it, instead of failing
// the object: a long object read at Kafka's pace outlives connections. A
// failure that is not a network one (the object changed or is gone),
// or readResumes failures in a row, fails the read.
type resumingReader struct {
	ctx     context.Context
	store   Store
	key     string
	size    int64 // from the listing; reading stops there
	stall   time.Duration
	log     zerolog.Logger
	resumed *atomic.Int64 // counts resumptions (metric); may be nil

	mu      sync.Mutex // guards body and closed against Close from another goroutine
	body    *stallBody
	closed  bool
	version string
	off     int64
	fails   int
	okFrom  int64 // where the last failure was; fails resets resumeProgress after it
}

// openResuming opens obj for a resumingReader; version, when set, is the
// version an earlier run read (the object must still be that one).
func openResuming(ctx context.Context, store Store, obj Object, version string, stall time.Duration, log zerolog.Logger, resumed *atomic.Int64) (*resumingReader, error) {
	if stall <= 0 {
		stall = DefaultReadStall
	}
	r := &resumingReader{ctx: ctx, store: store, key: obj.Key, size: obj.Size, stall: stall, log: log, resumed: resumed}
	rc, answered, err := store.Open(ctx, obj.Key, ReadAt{Version: version})
	if err != nil {
		return nil, err
	}
	switch {
	case answered != "":
		r.version = answered
	case version != "":
		r.version = version // asked for and not refused
	default:
		// The answer names no version (an S3-compatible store without
		// ETags): the listing's, if it had one, keeps resumed reads and
		// reruns checked.
		r.version = obj.Version
	}
	r.body = newStallBody(rc, stall)
	return r, nil
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		r.mu.Lock()
		body, closed := r.body, r.closed
		r.mu.Unlock()
		if closed {
			return 0, errObjectClosed
		}
		n, err := body.Read(p)
		r.off += int64(n)
		if r.fails > 0 && r.off-r.okFrom >= resumeProgress {
			r.fails = 0
		}
		if errors.Is(err, ErrObjectReplaced) {
			// What follows is another version's: unread, not bad.
			return n, fmt.Errorf("%w: %w", envelope.ErrUnread, err)
		}
		if err == nil || err == io.EOF || !r.resumable(err) {
			return n, err
		}
		if r.size > 0 && r.off >= r.size {
			return n, io.EOF // all of it arrived; the failure came after
		}
		if rerr := r.reopen(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resumable: a network failure of the body, while the run goes on.
func (r *resumingReader) resumable(err error) bool {
	if r.ctx.Err() != nil {
		return false
	}
	return errors.Is(err, errReadStalled) || errors.Is(err, io.ErrUnexpectedEOF) || retry.Network(r.ctx, err)
}

// reopen drops the connection and opens the object again at r.off, with
// backoff; it fails after readResumes failures in a row.
func (r *resumingReader) reopen(cause error) error {
	r.mu.Lock()
	r.body.Close()
	r.mu.Unlock()
	r.okFrom = r.off
	for {
		r.fails++
		if r.fails > readResumes {
			return fmt.Errorf("%w: reading at byte %d failed again after %d resumed reads in a row: %w", envelope.ErrUnread, r.off, readResumes, cause)
		}
		r.log.Warn().Err(cause).Int64("offset", r.off).Int("attempt", r.fails).Msg("reading the object failed; reading on from the same byte")
		if r.resumed != nil {
			r.resumed.Add(1)
		}
		if err := backoff.Sleep(r.ctx, backoff.Delay(r.fails, 200*time.Millisecond, 5*time.Second)); err != nil {
			return errors.Join(cause, err)
		}
		rc, _, err := r.store.Open(r.ctx, r.key, ReadAt{From: r.off, Version: r.version})
		if err == nil {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.closed {
				rc.Close()
				return errObjectClosed
			}
			r.body = newStallBody(rc, r.stall)
			return nil
		}
		if !r.resumable(err) {
			return fmt.Errorf("%w: reading on at byte %d after %v: %w", envelope.ErrUnread, r.off, cause, err)
		}
		cause = err
	}
}

// Close closes the current connection; reads after it fail.
func (r *resumingReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.body.Close()
}

// errObjectClosed is what reads after Close return.
var errObjectClosed = errors.New("object closed")

// stallBody fails a Read that waits longer than d for bytes: it closes
// the body, which ends the blocked read, and reports errReadStalled.
type stallBody struct {
	rc    io.ReadCloser
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
	once  sync.Once
}

func newStallBody(rc io.ReadCloser, d time.Duration) *stallBody {
	b := &stallBody{rc: rc, d: d}
	// Armed by Read only: created stopped, so it cannot fire before b.t is
	// set (a tiny d crashed Close on a nil timer).
	b.t = time.AfterFunc(time.Hour, func() { b.fired.Store(true); b.Close() })
	b.t.Stop()
	return b
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.t.Reset(b.d)
	n, err := b.rc.Read(p)
	b.t.Stop()
	if b.fired.Load() {
		return n, fmt.Errorf("%w for %s", errReadStalled, b.d)
	}
	return n, err
}

func (b *stallBody) Close() error {
	var err error
	b.once.Do(func() {
		b.t.Stop()
		err = b.rc.Close()
	})
	return err
}
