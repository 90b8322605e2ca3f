package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// logEntry is one log held by logsAPI.
type logEntry struct {
	id, typ, subscription, message string
	at                             time.Time
}

// logsAPI is the Akeneo Logs API as the vendor documents it, seen from
// the data: entries sorted by timestamp (ascending or descending, the
// vendor does not say), a from/to filter and page/limit pagination
// answered from the current state at each request. An error occurring
// within 5 minutes of an error log with the same subscription_id and
// error_message is merged into it and moves its timestamp to the latest
// occurrence ("Error Log Deduplication"). before[n] runs just before
// request n (1-based) is answered: the state changes between two page
// requests of one poll.
type logsAPI struct {
	mu       sync.Mutex
	desc     bool
	logs     []logEntry
	before   map[int]func(a *logsAPI)
	requests int
	srv      *httptest.Server
}

func newLogsAPI(t *testing.T, desc bool) *logsAPI {
	a := &logsAPI{desc: desc, before: map[int]func(*logsAPI){}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// insert adds a log (an action, or an error that merges with nothing).
func (a *logsAPI) insert(id, typ string, at time.Time) {
	a.logs = append(a.logs, logEntry{id: id, typ: typ, subscription: "subscr-" + id, message: "timeout", at: at.UTC()})
}

// occur records an error occurrence at at: merged into an error log of the
// same subscription and message at most 5 minutes older (its timestamp
// moves to at), or a new log.
func (a *logsAPI) occur(id, subscription, message string, at time.Time) {
	for i, l := range a.logs {
		if l.typ == "error" && l.subscription == subscription && l.message == message && !l.at.After(at) && at.Sub(l.at) <= 5*time.Minute {
			a.logs[i].at = at.UTC()
			return
		}
	}
	a.logs = append(a.logs, logEntry{id: id, typ: "error", subscription: subscription, message: message, at: at.UTC()})
}

func (a *logsAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	if a.requests > 200 { // a bounded test: a poller that loops fails here
		http.Error(w, `{"message":"too many requests in one test"}`, http.StatusBadRequest)
		return
	}
	if f := a.before[a.requests]; f != nil {
		f(a)
	}
	from, to, page, limit, ok := logsQuery(w, r)
	if !ok {
		return
	}
	sort.Slice(a.logs, func(i, j int) bool {
		if !a.logs[i].at.Equal(a.logs[j].at) {
			return a.logs[i].at.Before(a.logs[j].at) != a.desc
		}
		return a.logs[i].id < a.logs[j].id
	})
	var sel []map[string]any
	for _, l := range a.logs {
		if l.at.Before(from) || l.at.After(to) {
			continue
		}
		m := map[string]any{"log_id": l.id, "log_type": l.typ, "timestamp": l.at.Format(time.RFC3339),
			"subscriber_id": "sub-1", "subscription_id": l.subscription, "operation": "failed_to_deliver_event"}
		if l.typ == "error" {
			m["error_message"], m["error_code"] = l.message, 500
		}
		sel = append(sel, m)
	}
	start := min((page-1)*limit, len(sel))
	json.NewEncoder(w).Encode(map[string]any{"data": sel[start:min(start+limit, len(sel))]})
}

// ids is the set of log ids in [from, to] now.
func (a *logsAPI) ids(from, to time.Time) map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]bool{}
	for _, l := range a.logs {
		if !l.at.Before(from) && !l.at.After(to) {
			m[l.id] = true
		}
	}
	return m
}

func (a *logsAPI) at(id string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.logs {
		if l.id == id {
			return l.at
		}
	}
	return time.Time{}
}

// recorder is a sink keeping what it was given.
type recorder struct {
	mu     sync.Mutex
	events []envelope.Event
}

func (r *recorder) Deliver(_ context.Context, b *sink.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, b.Events...)
	return nil
}

func (r *recorder) Close() error { return nil }

// shiftTest is one way entries move or appear while a poll pages.
type shiftTest struct {
	name string
	desc bool
	// setup fills the API; t0 is the poll's now. It returns the ids that
	// must come back with their new timestamp (marked updated when they
	// were delivered before with the old one).
	setup func(a *logsAPI, t0 time.Time) (moved []string)
	// onePoll: the first poll alone must deliver every id present at its
	// start (otherwise the second poll, whose window overlaps, may help).
	onePoll bool
	// shifts: the poller must have counted a shift.
	shifts bool
}

// TestPagingSurvivesShifts: whatever moves or appears between two page
// requests of one poll, every log present in the window when the poll
// started is delivered, moved error logs come back with their new
// timestamp marked updated, and what was seen to shift is counted.
func TestPagingSurvivesShifts(t *testing.T) {
	for _, tc := range shiftTests() {
		t.Run(tc.name, func(t *testing.T) {
			a := newLogsAPI(t, tc.desc)
			t0 := time.Date(2024, 11, 25, 12, 0, 0, 0, time.UTC)
			moved := tc.setup(a, t0)
			present := a.ids(t0.Add(-time.Hour), t0)
			rec := &recorder{}
			p, err := NewAkeneo(AkeneoConfig{Common: Common{Start: time.Hour, PageSize: 50}, BaseURL: a.srv.URL,
				PIMURL: "https://mypim.example", Token: "pim-token", ClientID: "client-1"}, rec, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			p.now = func() time.Time { return t0 }
			if _, err := p.Once(context.Background()); err != nil {
				t.Fatalf("first poll: %v", err)
			}
			if tc.onePoll {
				assertDelivered(t, rec, present, "after the first poll")
			}
			p.now = func() time.Time { return t0.Add(time.Minute) }
			if _, err := p.Once(context.Background()); err != nil {
				t.Fatalf("second poll: %v", err)
			}
			assertDelivered(t, rec, present, "after the second poll")
			assertDelivered(t, rec, a.ids(t0.Add(-time.Hour), t0.Add(time.Minute)), "after the second poll (entries added while paging)")
			for _, id := range moved {
				assertMoved(t, rec, id, a.at(id))
			}
			if got := testutil.ToFloat64(p.m.shifts); tc.shifts && got == 0 {
				t.Errorf("eventrelay_poll_shifts_total = 0, want > 0")
			}
		})
	}
}

// spreadLogs adds 200 logs 10s apart ending 1m before t0; log-045 and
// log-140 are errors. It returns the time of the first.
func spreadLogs(a *logsAPI, t0 time.Time) time.Time {
	first := t0.Add(-200*10*time.Second - time.Minute)
	for i := range 200 {
		typ := "action"
		if i == 45 || i == 140 {
			typ = "error"
		}
		a.insert(fmt.Sprintf("log-%03d", i), typ, first.Add(time.Duration(i)*10*time.Second))
	}
	return first
}

// blockLogs adds 120 logs sharing one second (b-010 an error) between 30
// before and 30 after, and returns that second.
func blockLogs(a *logsAPI, t0 time.Time) time.Time {
	b := t0.Add(-8 * time.Minute)
	for i := range 30 {
		a.insert(fmt.Sprintf("a-%03d", i), "action", b.Add(-time.Duration(30-i)*10*time.Second))
		a.insert(fmt.Sprintf("c-%03d", i), "action", b.Add(time.Duration(i+1)*10*time.Second))
	}
	for i := range 120 {
		typ := "action"
		if i == 10 {
			typ = "error"
		}
		a.insert(fmt.Sprintf("b-%03d", i), typ, b)
	}
	return b
}

// mergeBefore makes the error log id recur at at just before request req:
// the API merges it and moves it there.
func mergeBefore(a *logsAPI, req int, id string, at time.Time) {
	a.before[req] = func(a *logsAPI) { a.occur("new-"+id, "subscr-"+id, "timeout", at) }
}

func shiftTests() []shiftTest {
	return []shiftTest{
		{name: "ascending/error log merged past the next page", onePoll: true, shifts: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				first := spreadLogs(a, t0)
				// log-045 was on page 1; merged 4m later it lands on page 2.
				mergeBefore(a, 2, "log-045", first.Add(450*time.Second+4*time.Minute+5*time.Second))
				return []string{"log-045"}
			}},
		{name: "descending/error log merged into the part already read",
			desc: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				first := spreadLogs(a, t0)
				// log-140 is unread after page 1 (logs 199..150); merged 4m later
				// it moves into page 1: the next poll's overlap reads it.
				mergeBefore(a, 2, "log-140", first.Add(1400*time.Second+4*time.Minute+5*time.Second))
				return []string{"log-140"}
			}},
		{name: "ascending/new logs while paging", onePoll: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				first := spreadLogs(a, t0)
				a.before[2] = func(a *logsAPI) {
					a.insert("late-1", "action", first.Add(1995*time.Second)) // newest
					a.insert("late-2", "action", first.Add(995*time.Second))
				}
				return nil
			}},
		{name: "descending/new logs while paging", desc: true, onePoll: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				first := spreadLogs(a, t0)
				a.before[2] = func(a *logsAPI) {
					a.insert("late-1", "action", first.Add(1995*time.Second)) // newest: read by the next poll
					a.insert("late-2", "action", first.Add(995*time.Second))
					a.insert("late-3", "action", first.Add(5*time.Second))
				}
				return nil
			}},
		{name: "ascending/full pages sharing one second, a merge inside", onePoll: true, shifts: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				b := blockLogs(a, t0)
				// b-010 leaves the block while its pages are read.
				mergeBefore(a, 4, "b-010", b.Add(4*time.Minute+5*time.Second))
				return []string{"b-010"}
			}},
		{name: "descending/full pages sharing one second, a merge inside", desc: true, shifts: true,
			setup: func(a *logsAPI, t0 time.Time) []string {
				b := blockLogs(a, t0)
				mergeBefore(a, 4, "b-010", b.Add(4*time.Minute+5*time.Second))
				return []string{"b-010"}
			}},
	}
}

func assertDelivered(t *testing.T, rec *recorder, want map[string]bool, when string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := map[string]bool{}
	for _, e := range rec.events {
		got[e.ID] = true
	}
	var lost []string
	for id := range want {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Errorf("%s: %d of %d logs never delivered: %v", when, len(lost), len(want), lost)
	}
}

// assertMoved: id came back with its new timestamp, marked updated when
// it had been delivered before with its old one.
func assertMoved(t *testing.T, rec *recorder, id string, at time.Time) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	before := false
	for _, e := range rec.events {
		switch {
		case e.ID != id:
		case e.OccurredAt.Equal(at) && e.Updated == before:
			return
		case e.OccurredAt.Before(at):
			before = true
		}
	}
	t.Errorf("%s: not delivered with its new timestamp %s (marked updated: %v)", id, at.Format(time.RFC3339), before)
}
