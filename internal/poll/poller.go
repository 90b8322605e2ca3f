package poll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Common are the settings every poller shares. Zero fields take the
// defaults in their comments.
type Common struct {
	// Interval between polls. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// Overlap re-reads this much before the cursor, for late or updated
	// entries. Default 10m.
	Overlap time.Duration `yaml:"overlap"`
	// Start is how far back the first poll (no cursor yet) reaches. Default 24h.
	Start time.Duration `yaml:"start"`
	// PageSize asked per page. Default 100.
	PageSize int `yaml:"page_size"`
	// StateFile keeps the cursor. Required for `consumer poll` to resume.
	StateFile string `yaml:"state_file"`
	// Timeout of one HTTP request. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodySize is the most bytes of a response read; a larger page
	// fails the poll with "response larger than N bytes". Default
	// DefaultMaxBodySize.
	MaxBodySize int64 `yaml:"max_body_size"`
	// OnceAttempts is how often a one-shot poll (`consumer poll --once`)
	// asks for a page that fails with a transient error (429, 5xx, network)
	// before it fails naming the last one; a continuous poll asks until the
	// API answers. Default DefaultOnceAttempts (about two minutes of
	// backoff).
	OnceAttempts int `yaml:"once_attempts"`
	// Preview reads the cursor but never writes it: set for a stdout sink,
	// so a dry run shows what the next real poll would deliver and leaves
	// the cursor (and the ids delivered) where they were.
	Preview bool `yaml:"-"`
}

// Defaults of Common.
const (
	DefaultMaxBodySize  = 64 << 20
	DefaultOnceAttempts = 8
)

func (c Common) withDefaults() Common {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	def(&c.Interval, time.Minute)
	def(&c.Overlap, 10*time.Minute)
	def(&c.Start, 24*time.Hour)
	def(&c.Timeout, 30*time.Second)
	if c.PageSize == 0 {
		c.PageSize = 100
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.OnceAttempts == 0 {
		c.OnceAttempts = DefaultOnceAttempts
	}
	return c
}

// vendor is one API's dialect.
type vendor interface {
	name() string
	format() envelope.Format
	// pageURL is the URL of page (0-based) of the window [from, to].
	pageURL(from, to time.Time, page, size int) string
	// retention is how far back the API keeps entries (0: unknown).
	retention() time.Duration
	// updates reports whether an id may come back with a newer timestamp
	// as a changed entry (re-emitted, marked updated).
	updates() bool
	// step is the precision of the times in pageURL's query (timestamps
	// are assumed no finer).
	step() time.Duration
}

// Poller polls one vendor API into a sink.
type Poller struct {
	v     vendor
	c     *client
	cfg   Common
	dec   *envelope.Decoder
	sink  sink.Sink
	state *Cursor
	log   zerolog.Logger
	m     *metrics
	pm    *pipeline.Metrics
	now   func() time.Time
}

func newPoller(v vendor, c *client, cfg Common, s sink.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Poller, error) {
	cfg = cfg.withDefaults()
	dec, err := envelope.NewDecoder(envelope.Options{Format: v.format()})
	if err != nil {
		return nil, err
	}
	state, err := LoadCursor(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	state.readOnly = cfg.Preview
	c.log = log
	return &Poller{v: v, c: c, cfg: cfg, dec: dec, sink: s, state: state, log: log, m: newMetrics(reg, v.name()), pm: pipeline.NewMetrics(reg), now: time.Now}, nil
}

// Stats is what one poll did.
type Stats struct {
	Pages, Events, Duplicates, Updated, Dead int
	// Repeats are entries served twice within the poll (the boundary of
	// each page is read again); Shifts are entries seen to move or appear
	// between two page requests (see pager.go).
	Repeats, Shifts int
	From, To        time.Time
}

// Run polls every Interval until ctx ends. A poll that fails with an
// authorization or client error stops the run; throttling and server
// errors are retried inside the poll.
func (p *Poller) Run(ctx context.Context) error {
	for {
		st, err := p.Once(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p.log.Info().Time("from", st.From).Time("to", st.To).Int("pages", st.Pages).Int("events", st.Events).
			Int("duplicates", st.Duplicates).Int("updated", st.Updated).Int("shifts", st.Shifts).Msg("poll done")
		if err := backoff.Sleep(ctx, p.cfg.Interval); err != nil {
			return nil
		}
	}
}

// OneShot is one poll as `consumer poll --once` runs it: Once, with each
// page asked for at most OnceAttempts times, so a persistent failure ends
// it with an error naming the last status.
func (p *Poller) OneShot(ctx context.Context) (Stats, error) {
	p.c.maxAttempts = p.cfg.OnceAttempts
	defer func() { p.c.maxAttempts = 0 }()
	return p.Once(ctx)
}

// Once polls one window: from the cursor minus the overlap to now, paged
// by timestamp so that entries moving or appearing meanwhile are not
// skipped (pager.go).
func (p *Poller) Once(ctx context.Context) (Stats, error) {
	now := p.now().UTC()
	st := Stats{To: now}
	cursor := p.state.Time()
	st.From = cursor.Add(-p.cfg.Overlap)
	if cursor.IsZero() {
		st.From = now.Add(-p.cfg.Start)
	}
	if r := p.v.retention(); r > 0 && st.From.Before(now.Add(-r)) {
		oldest := now.Add(-r).Add(time.Minute)
		if !cursor.IsZero() {
			p.m.gaps.Inc()
			p.log.Error().Time("cursor", cursor).Time("oldest_kept", oldest).Stringer("retention", r).
				Msg("the cursor is older than the API's retention: entries between the cursor and oldest_kept are gone and cannot be delivered")
		}
		st.From = oldest
	}
	pg := newPager(st.From, st.To, p.v.step())
	src := &pollSource{p: p, pg: pg, st: &st}
	if err := pipeline.Run(ctx, p.sink, pipeline.Options{Source: p.v.name(), Log: p.log, Metrics: p.pm}, src); err != nil {
		return st, err
	}
	if err := p.state.Advance(st.To, st.To.Add(-p.cfg.Overlap-time.Minute)); err != nil {
		return st, err
	}
	p.m.cursor.Set(float64(st.To.Unix()))
	return st, nil
}

// pollSource yields one page of the poll's window per unit: the entries
// the poll has not served yet and earlier polls did not deliver. A unit's
// Ack remembers its entries in the cursor.
type pollSource struct {
	p  *Poller
	pg *pager
	st *Stats
}

func (s *pollSource) Next(ctx context.Context) (*pipeline.Unit, error) {
	p, st, w := s.p, s.st, s.pg.current()
	if w == nil {
		return nil, io.EOF
	}
	body, err := p.c.get(ctx, p.v.pageURL(w.from, w.to, w.page, p.cfg.PageSize))
	if err != nil {
		p.m.errors.Inc()
		return nil, fmt.Errorf("%s: %w", p.v.name(), err)
	}
	raws, err := items(body)
	if err != nil {
		return nil, fmt.Errorf("%s: page %d of %s..%s: %w", p.v.name(), w.page, w.from.Format(time.RFC3339), w.to.Format(time.RFC3339), err)
	}
	st.Pages++
	res := p.decodePage(raws, w)
	entries := make([]pageEntry, len(res.Events))
	kept, fresh := res.Events[:0], 0
	for i, ev := range res.Events {
		entries[i] = pageEntry{id: ev.ID, at: ev.OccurredAt}
		keep, isNew := s.pg.see(entries[i])
		if !keep {
			st.Repeats++
			continue
		}
		switch {
		case isNew:
			fresh++
			if p.delivered(&ev, st) {
				continue
			}
		case p.v.updates():
			// Served earlier in this poll, now with a newer timestamp (the
			// cursor may not hold it yet: that unit can still be in flight).
			ev.Updated = true
			st.Updated++
		default:
			st.Duplicates++
			continue
		}
		kept = append(kept, ev)
	}
	s.pg.advance(entries, len(raws) >= p.cfg.PageSize, fresh)
	p.reportShifts(s.pg, st)
	return &pipeline.Unit{Events: kept, Errors: res.Errors, Ack: func(_ context.Context, a pipeline.Acked) error {
		st.Events += a.Events
		st.Dead += a.Dead
		p.m.events.Add(float64(a.Events))
		return p.state.Remember(kept)
	}}, nil
}

// decodePage decodes the entries of a page in the order served.
func (p *Poller) decodePage(raws []json.RawMessage, w *window) *envelope.Result {
	var res envelope.Result
	object := p.v.name() + " " + w.from.Format(time.RFC3339) + ".." + w.to.Format(time.RFC3339) + " page " + strconv.Itoa(w.page)
	for i, raw := range raws {
		p.dec.Decode(&res, raw, envelope.Position{Object: object, Index: i})
	}
	return &res
}

// delivered reports whether an earlier poll delivered ev as it is now; an
// entry that came back with a newer timestamp is marked updated where the
// API updates entries.
func (p *Poller) delivered(ev *envelope.Event, st *Stats) bool {
	prev, seen := p.state.Seen(ev.ID)
	switch {
	case !seen:
		return false
	case ev.OccurredAt.After(prev) && p.v.updates():
		ev.Updated = true
		st.Updated++
		return false
	}
	st.Duplicates++
	return true
}

// reportShifts logs and counts what the pager saw move or appear between
// two page requests, and warns once a poll about unsorted pages.
func (p *Poller) reportShifts(pg *pager, st *Stats) {
	for _, s := range pg.shifts {
		st.Shifts++
		p.m.shifts.Inc()
		p.log.Warn().Str("event_id", s.id).Time("window_from", s.from).Time("window_to", s.to).Str("reason", s.reason).
			Msg("entries moved or appeared between two page requests")
	}
	pg.shifts = pg.shifts[:0]
	if pg.unsorted && !pg.warned {
		pg.warned = true
		p.log.Warn().Msg("pages are not sorted by timestamp: paging by page number and re-reading until a pass serves no new entry")
	}
}

// items finds the array of entries in a page: the body itself, or the
// first array under "data", "items", "results", "events", "logs" or
// "_embedded.items" (the vendors do not document the envelope).
func items(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	var arr []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, fmt.Errorf("decoding the page: %w", err)
		}
		return arr, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("decoding the page: %w", err)
	}
	for _, k := range []string{"data", "items", "results", "events", "logs"} {
		if v, ok := obj[k]; ok && json.Unmarshal(v, &arr) == nil {
			return arr, nil
		}
	}
	if v, ok := obj["_embedded"]; ok {
		var emb map[string]json.RawMessage
		if json.Unmarshal(v, &emb) == nil && json.Unmarshal(emb["items"], &arr) == nil {
			return arr, nil
		}
	}
	return nil, errors.New("the page holds no array of entries (looked at the body, data, items, results, events, logs, _embedded.items)")
}

func newClient(cfg Common) *client {
	cfg = cfg.withDefaults()
	return &client{http: &http.Client{Timeout: cfg.Timeout}, maxBackoff: time.Minute, maxBody: cfg.MaxBodySize, sleep: backoff.Sleep}
}
