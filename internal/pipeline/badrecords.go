package pipeline

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/rs/zerolog"
)

// summaryEvery is how often a long-running source (a Kinesis shard) logs
// the decode errors it met.
const summaryEvery = 10 * time.Second

// badRecords counts decode errors between two log lines. Every bad record
// still becomes its own dead letter (raw bytes, position, reason); the
// log gets one line per run of a source, or per summaryEvery, instead of
// one per record — a file of random bytes is one line, not thousands.
type badRecords struct {
	n           int
	kinds       map[envelope.ErrorKind]int
	first, last *envelope.Error
	since       time.Time
}

func (b *badRecords) add(e *envelope.Error) {
	if b.n == 0 {
		b.first, b.since = e, time.Now()
		b.kinds = map[envelope.ErrorKind]int{}
	}
	b.n++
	b.kinds[e.Kind]++
	b.last = e
}

func (b *badRecords) due(now time.Time) bool { return b.n > 0 && now.Sub(b.since) >= summaryEvery }

// log writes the summary line (if any record was bad) and starts over.
func (b *badRecords) log(log zerolog.Logger, source string) {
	if b.n == 0 {
		return
	}
	var kinds strings.Builder
	for _, k := range slices.Sorted(maps.Keys(b.kinds)) {
		if kinds.Len() > 0 {
			kinds.WriteByte(',')
		}
		kinds.WriteString(string(k) + ":" + strconv.Itoa(b.kinds[k]))
	}
	ev := log.Warn().Str("source", source).Int("records", b.n).Str("kinds", kinds.String()).
		Str("format", string(b.first.Format)).Str("position", b.first.Pos.String()).
		Str("kind", string(b.first.Kind)).Str("reason", b.first.Reason)
	if b.n > 1 {
		ev = ev.Str("last_position", b.last.Pos.String())
	}
	ev.Msg("records sent to the dead-letter topic (position, kind and reason are the first one's)")
	*b = badRecords{}
}
