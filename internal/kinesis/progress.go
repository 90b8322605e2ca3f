package kinesis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// drainGrace is how long a drain that timed out still waits for the KCL
// to return before the worker exits without it.
const drainGrace = 2 * time.Second

// shardProgress is how long a shard has made no progress and on what it
// waits.
type shardProgress struct {
	shard   string
	stalled time.Duration
	waiting string
}

// progress reports each active shard: the longer of the time since KCL last
// called its processor (reads stall) and the age of its oldest batch not
// yet delivered and checkpointed (Kafka or the lease table stall).
func (s *Stream) progress(now time.Time) []shardProgress {
	s.mu.Lock()
	procs := make([]*processor, 0, len(s.active))
	for _, p := range s.active {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	out := make([]shardProgress, 0, len(procs))
	reading := "reading records from Kinesis (GetRecords)"
	if s.cfg.EnhancedFanOut {
		reading = "reading records from Kinesis (SubscribeToShard)"
	}
	for _, p := range procs {
		sp := shardProgress{shard: p.shard, stalled: now.Sub(time.Unix(0, p.called.Load())), waiting: reading}
		if p.pl != nil {
			if age, what := p.pl.Waiting(now); age > sp.stalled {
				sp.stalled, sp.waiting = age, "delivery to Kafka"
				if what == "acknowledgement" {
					sp.waiting = "checkpoint to the lease table (DynamoDB)"
				}
			}
		}
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b shardProgress) int { return strings.Compare(a.shard, b.shard) })
	return out
}

// Stalled returns an error naming the shards that made no progress for
// longer than progress_timeout, for readiness; nil when all progress.
func (s *Stream) Stalled() error {
	var stalled []string
	for _, sp := range s.progress(time.Now()) {
		if sp.stalled > s.cfg.ProgressTimeout {
			stalled = append(stalled, fmt.Sprintf("%s (%s, waiting on %s)", sp.shard, sp.stalled.Round(time.Second), sp.waiting))
		}
	}
	if len(stalled) == 0 {
		return nil
	}
	return fmt.Errorf("no progress for more than %s on %s", s.cfg.ProgressTimeout, strings.Join(stalled, "; "))
}

// watch logs each shard that stops progressing, once per stall, with what
// it waits on, and again when it progresses again.
func (s *Stream) watch(ctx context.Context) {
	tick := time.NewTicker(min(max(s.cfg.ProgressTimeout/4, 100*time.Millisecond), 5*time.Second))
	defer tick.Stop()
	reported := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, sp := range s.progress(now) {
				switch {
				case sp.stalled > s.cfg.ProgressTimeout && !reported[sp.shard]:
					reported[sp.shard] = true
					s.log.Warn().Str("shard_id", sp.shard).Stringer("stalled_for", sp.stalled.Round(time.Second)).Str("waiting_on", sp.waiting).
						Msg("shard made no progress for longer than progress_timeout")
				case sp.stalled <= s.cfg.ProgressTimeout && reported[sp.shard]:
					delete(reported, sp.shard)
					s.log.Info().Str("shard_id", sp.shard).Msg("shard progresses again")
				}
			}
		}
	}
}

// progressCollector exports eventrelay_kinesis_seconds_since_progress per
// shard, computed when scraped.
type progressCollector struct {
	s    *Stream
	desc *prometheus.Desc
}

func newProgressCollector(s *Stream) progressCollector {
	return progressCollector{s: s, desc: prometheus.NewDesc("eventrelay_kinesis_seconds_since_progress",
		"Seconds since the shard last made progress: a read from Kinesis, or its oldest batch delivered and checkpointed.",
		[]string{"shard_id"}, nil)}
}

func (c progressCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c progressCollector) Collect(ch chan<- prometheus.Metric) {
	for _, sp := range c.s.progress(time.Now()) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, sp.stalled.Seconds(), sp.shard)
	}
}
