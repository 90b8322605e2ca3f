package replay

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
)

// objectSource yields one object's values in units of up to BatchSize
// events and dead letters. Each unit's Ack records the object offset past
// its last value in the state; the last unit's Ack marks the object
// complete. Values an earlier run acknowledged (ending at or before resume)
// are skipped.
type objectSource struct {
	r      *Runner
	id     string
	or     *envelope.ObjectReader
	resume int64
	st     *ObjectStats
	// stop ends the reading (the run is stopping); units handed on are
	// still delivered.
	stop context.Context
	// bytes is how much of the object was read so far.
	bytes func() int64
	// end is the offset past the last value read.
	end int64
	// size is how many events the last unit held: the next one's slice is
	// made that big at once instead of growing (and copying) to it.
	size int
	// err ends the source: io.EOF, or the stream error met after the
	// values handed on before it.
	err error
}

func (s *objectSource) Next(ctx context.Context) (*pipeline.Unit, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.stop.Err() != nil {
		return nil, errStopped
	}
	var res envelope.Result
	if s.size > 0 {
		res.Events = make([]envelope.Event, 0, s.size+s.size/8)
	}
	for len(res.Events)+len(res.Errors) < s.r.opts.BatchSize {
		end := res.End
		err := s.or.Next(&res)
		s.end = max(s.end, res.End)
		if errors.Is(err, io.EOF) && s.end < s.resume {
			s.err = fmt.Errorf("%w: it ends at offset %d, before offset %d up to which an earlier run acknowledged it: it shrank or was replaced since; --restart replays everything again", ErrObjectShrank, s.end, s.resume)
			return nil, s.err
		}
		if errors.Is(err, io.EOF) {
			s.err = io.EOF
			return s.unit(ctx, &res, true)
		}
		if err != nil {
			// Hand on the good values first, then the error.
			s.err = err
			res.End = end
			return s.unit(ctx, &res, false)
		}
		if res.End <= s.resume {
			res.Events, res.Errors = res.Events[:0], res.Errors[:0] // acknowledged by an earlier run
		}
	}
	return s.unit(ctx, &res, false)
}

// ErrObjectReplaced is matched (errors.Is) by the failure of an object
// whose version changed while it was read, or since an earlier run
// acknowledged part of it: reading on would splice two versions.
var ErrObjectReplaced = errors.New("object replaced")

// ErrObjectShrank is matched (errors.Is) by the failure of an object that
// ends before the offset the state says an earlier run acknowledged.
var ErrObjectShrank = errors.New("object shorter than its recorded progress")

// unit wraps what was read, after waiting for the run's rate limit (a
// wait the stop cuts short: what was read is then not handed on).
func (s *objectSource) unit(_ context.Context, res *envelope.Result, last bool) (*pipeline.Unit, error) {
	if s.r.limit != nil {
		for n := len(res.Events); n > 0; n -= s.r.limit.Burst() {
			if err := s.r.limit.WaitN(s.stop, min(n, s.r.limit.Burst())); err != nil {
				return nil, errors.Join(errStopped, err)
			}
		}
	}
	end := res.End
	s.size = len(res.Events)
	return &pipeline.Unit{Events: res.Events, Errors: res.Errors, Ack: func(_ context.Context, a pipeline.Acked) error {
		s.st.Events += int64(a.Events)
		s.st.Dead += int64(a.Dead)
		s.r.Progress.events.Add(int64(a.Events))
		// The sink acknowledged every value before end: their chunks are
		// free (when the sink says no write failed meanwhile).
		s.or.Release(end, last)
		if last {
			s.st.Bytes = s.bytes()
			return s.r.state.Complete(s.id, *s.st)
		}
		if end > s.resume {
			return s.r.state.Progress(s.id, end)
		}
		return nil
	}}, nil
}

// keep is the pipeline filter: events inside the window.
func (s *objectSource) keep(e *envelope.Event) bool {
	if s.r.opts.Window.Contains(e.OccurredAt) {
		return true
	}
	s.st.Outside++
	return false
}
