package replay

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Progress counts a run's work; Report renders it.
type Progress struct {
	objectsTotal, objectsDone atomic.Int64
	bytesTotal, bytesDone     atomic.Int64
	events                    atomic.Int64
	// resumes counts object reads resumed after a network failure.
	resumes atomic.Int64
	// moved is when bytes were last read or events delivered (unix nanos).
	moved atomic.Int64
	// StallAfter: Report warns when the run makes no progress for this
	// long (default DefaultStallAfter).
	StallAfter time.Duration
	// Partition names the part of a split replay ("i/n"); Register then
	// labels every series with it, and the terminal line shows it. Default
	// "": the whole replay, no label.
	Partition string
}

// DefaultStallAfter is how long a replay may make no progress before it
// says so.
const DefaultStallAfter = time.Minute

// since is how long the run has made no progress.
func (p *Progress) since(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, p.moved.Load()))
}

// Register exposes the progress as Prometheus metrics, labelled
// partition="i/n" for a part of a split replay.
func (p *Progress) Register(reg prometheus.Registerer) {
	if p.Partition != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"partition": p.Partition}, reg)
	}
	f := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		f("eventrelay_replay_objects", "Objects the replay will read.", &p.objectsTotal),
		f("eventrelay_replay_objects_done", "Objects read (or found done by an earlier run).", &p.objectsDone),
		f("eventrelay_replay_bytes", "Stored bytes of the objects to read.", &p.bytesTotal),
		f("eventrelay_replay_bytes_done", "Stored bytes read so far.", &p.bytesDone),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "eventrelay_replay_events_total", Help: "Events the replay delivered."},
			func() float64 { return float64(p.events.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "eventrelay_replay_read_resumes_total",
			Help: "Object reads resumed from the same byte after the connection failed or stalled."},
			func() float64 { return float64(p.resumes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "eventrelay_replay_seconds_since_progress",
			Help: "Seconds since the replay last read bytes or delivered events."},
			func() float64 { return p.since(time.Now()).Seconds() }),
	)
}

// Report writes progress until ctx ends: a line rewritten in place every
// second on a terminal, a log line every 10s otherwise; and a warning
// when the run made no progress for StallAfter (a stalled store or
// broker), once per stall.
func (p *Progress) Report(ctx context.Context, w io.Writer, tty bool, log zerolog.Logger) {
	every := 10 * time.Second
	if tty {
		every = time.Second
	}
	stallAfter := p.StallAfter
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	start := time.Now()
	p.moved.Store(start.UnixNano())
	// Ticks at most a second apart, so eventrelay_replay_seconds_since_progress
	// is current whatever the report interval.
	t := time.NewTicker(min(every, time.Second, max(stallAfter/4, 100*time.Millisecond)))
	defer t.Stop()
	var lastBytes, lastEvents int64
	lastReport, stalled := start, false
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case now := <-t.C:
			if b, e := p.bytesDone.Load(), p.events.Load(); b != lastBytes || e != lastEvents {
				lastBytes, lastEvents = b, e
				p.moved.Store(now.UnixNano())
				if stalled {
					stalled = false
					log.Info().Msg("replay progresses again")
				}
			}
			if d := p.since(now); d > stallAfter && !stalled {
				stalled = true
				log.Warn().Stringer("stalled_for", d.Round(time.Second)).Int64("objects_done", p.objectsDone.Load()).Int64("objects", p.objectsTotal.Load()).
					Msg("replay made no progress: no bytes read and no events delivered (a stalled store or Kafka)")
			}
			if now.Sub(lastReport) >= every {
				lastReport = now
				p.report(w, tty, log, now.Sub(start))
			}
		}
	}
}

func (p *Progress) report(w io.Writer, tty bool, log zerolog.Logger, elapsed time.Duration) {
	el := elapsed.Seconds()
	done, total := p.bytesDone.Load(), p.bytesTotal.Load()
	rate := float64(p.events.Load()) / el
	eta := "?"
	if done > 0 && total > done {
		eta = (time.Duration(float64(total-done) / (float64(done) / el) * float64(time.Second))).Round(time.Second).String()
	}
	if tty {
		part := ""
		if p.Partition != "" {
			part = "part " + p.Partition + "  "
		}
		fmt.Fprintf(w, "\r\033[K%sobjects %d/%d  %s/%s  %.0f events/s  ETA %s", part,
			p.objectsDone.Load(), p.objectsTotal.Load(), human(done), human(total), rate, eta)
		return
	}
	log.Info().Int64("objects_done", p.objectsDone.Load()).Int64("objects", p.objectsTotal.Load()).
		Int64("bytes_done", done).Int64("bytes", total).Int64("events", p.events.Load()).
		Float64("events_per_s", rate).Str("eta", eta).Msg("replay progress")
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
