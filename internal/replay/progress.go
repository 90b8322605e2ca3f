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
}

// Register exposes the progress as Prometheus metrics.
func (p *Progress) Register(reg prometheus.Registerer) {
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
	)
}

// Report writes progress until ctx ends: a line rewritten in place every
// second on a terminal, a log line every 10s otherwise.
func (p *Progress) Report(ctx context.Context, w io.Writer, tty bool, log zerolog.Logger) {
	every := 10 * time.Second
	if tty {
		every = time.Second
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		case <-t.C:
		}
		el := time.Since(start).Seconds()
		done, total := p.bytesDone.Load(), p.bytesTotal.Load()
		rate := float64(p.events.Load()) / el
		eta := "?"
		if done > 0 && total > done {
			eta = (time.Duration(float64(total-done) / (float64(done) / el) * float64(time.Second))).Round(time.Second).String()
		}
		if tty {
			fmt.Fprintf(w, "\r\033[Kobjects %d/%d  %s/%s  %.0f events/s  ETA %s",
				p.objectsDone.Load(), p.objectsTotal.Load(), human(done), human(total), rate, eta)
			continue
		}
		log.Info().Int64("objects_done", p.objectsDone.Load()).Int64("objects", p.objectsTotal.Load()).
			Int64("bytes_done", done).Int64("bytes", total).Int64("events", p.events.Load()).
			Float64("events_per_s", rate).Str("eta", eta).Msg("replay progress")
	}
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
