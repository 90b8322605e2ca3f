package poll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
}

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
	return c
}

// vendor is one API's dialect.
type vendor interface {
	name() string
	format() envelope.Format
	// pageURL is the URL of page (0-based) of the window.
	pageURL(from, to time.Time, page, size int) string
	// retention is how far back the API keeps entries (0: unknown).
	retention() time.Duration
	// updates reports whether an id may come back with a newer timestamp
	// as a changed entry (re-emitted, marked updated).
	updates() bool
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
	c.log = log
	return &Poller{v: v, c: c, cfg: cfg, dec: dec, sink: s, state: state, log: log, m: newMetrics(reg, v.name()), now: time.Now}, nil
}

// Stats is what one poll did.
type Stats struct {
	Pages, Events, Duplicates, Updated, Dead int
	From, To                                 time.Time
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
			Int("duplicates", st.Duplicates).Int("updated", st.Updated).Msg("poll done")
		if err := backoff.Sleep(ctx, p.cfg.Interval); err != nil {
			return nil
		}
	}
}

// Once polls one window: from the cursor minus the overlap to now.
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
			p.log.Error().Time("cursor", cursor).Time("oldest_kept", oldest).Dur("retention", r).
				Msg("the cursor is older than the API's retention: entries between the cursor and oldest_kept are gone and cannot be delivered")
		}
		st.From = oldest
	}
	for page := 0; ; page++ {
		body, err := p.c.get(ctx, p.v.pageURL(st.From, st.To, page, p.cfg.PageSize))
		if err != nil {
			p.m.errors.Inc()
			return st, fmt.Errorf("%s: %w", p.v.name(), err)
		}
		items, err := items(body)
		if err != nil {
			return st, fmt.Errorf("%s: page %d: %w", p.v.name(), page, err)
		}
		st.Pages++
		if err := p.deliverPage(ctx, items, st.From, page, &st); err != nil {
			return st, err
		}
		if len(items) < p.cfg.PageSize {
			break
		}
	}
	if err := p.state.Advance(st.To, st.To.Add(-p.cfg.Overlap-time.Minute)); err != nil {
		return st, err
	}
	p.m.cursor.Set(float64(st.To.Unix()))
	return st, nil
}

// deliverPage decodes a page, drops what was delivered before, delivers
// the rest and only then remembers it.
func (p *Poller) deliverPage(ctx context.Context, raws []json.RawMessage, from time.Time, page int, st *Stats) error {
	var batch sink.Batch
	var res envelope.Result
	object := p.v.name() + " from " + from.Format(time.RFC3339) + " page " + strconv.Itoa(page)
	for i, raw := range raws {
		res.Reset()
		p.dec.Decode(&res, raw, envelope.Position{Object: object, Index: i})
		for _, ev := range res.Events {
			prev, seen := p.state.Seen(ev.ID)
			switch {
			case seen && !ev.OccurredAt.After(prev):
				st.Duplicates++
				continue
			case seen && p.v.updates():
				ev.Updated = true
				st.Updated++
			case seen:
				st.Duplicates++
				continue
			}
			batch.Events = append(batch.Events, ev)
		}
		for _, e := range res.Errors {
			batch.Dead = append(batch.Dead, sink.FromDecodeError(e))
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := pipeline.Deliver(ctx, p.sink, &batch, p.log, 30*time.Second); err != nil {
		return err
	}
	st.Events += len(batch.Events)
	st.Dead += len(batch.Dead)
	p.m.events.Add(float64(len(batch.Events)))
	return p.state.Remember(batch.Events)
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

func newClient(timeout time.Duration) *client {
	return &client{http: &http.Client{Timeout: timeout}, maxBackoff: time.Minute, sleep: backoff.Sleep}
}
