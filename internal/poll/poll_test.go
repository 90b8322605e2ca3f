package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// akeneoServer implements the Logs API as documented: X-PIM-* headers,
// time-range filter, page/limit pagination, throttling on demand, and the
// error-log merge (same log_id, timestamp moved to the latest occurrence).
type akeneoServer struct {
	mu       sync.Mutex
	logs     map[string]map[string]any
	throttle int // next requests answered 429
	requests int
	srv      *httptest.Server
}

func newAkeneoServer(t *testing.T) *akeneoServer {
	a := &akeneoServer{logs: map[string]map[string]any{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *akeneoServer) add(id, typ string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := map[string]any{"log_id": id, "log_type": typ, "timestamp": at.UTC().Format(time.RFC3339),
		"subscriber_id": "sub-1", "subscription_id": "subscr-" + strconv.Itoa(len(a.logs)%3), "operation": "failed_to_deliver_event"}
	if typ == "error" {
		l["error_message"] = "timeout"
		l["error_code"] = 500
	}
	a.logs[id] = l
}

// merge moves an error log's timestamp forward, as the 5-minute dedup does.
func (a *akeneoServer) merge(id string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.logs[id]["timestamp"] = at.UTC().Format(time.RFC3339)
}

func (a *akeneoServer) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	if r.Header.Get("X-PIM-TOKEN") != "pim-token" || r.Header.Get("X-PIM-URL") != "https://mypim.example" || r.Header.Get("X-PIM-CLIENT-ID") != "client-1" {
		http.Error(w, `{"message":"invalid credentials"}`, http.StatusUnauthorized)
		return
	}
	if a.throttle > 0 {
		a.throttle--
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"message":"too many requests"}`, http.StatusTooManyRequests)
		return
	}
	from, to, page, limit, ok := logsQuery(w, r)
	if !ok {
		return
	}
	var sel []map[string]any
	for _, l := range a.logs {
		ts, _ := time.Parse(time.RFC3339, l["timestamp"].(string))
		if !ts.Before(from) && !ts.After(to) {
			sel = append(sel, l)
		}
	}
	sort.Slice(sel, func(i, j int) bool {
		if sel[i]["timestamp"] != sel[j]["timestamp"] {
			return sel[i]["timestamp"].(string) < sel[j]["timestamp"].(string)
		}
		return sel[i]["log_id"].(string) < sel[j]["log_id"].(string)
	})
	start := min((page-1)*limit, len(sel))
	end := min(start+limit, len(sel))
	json.NewEncoder(w).Encode(map[string]any{"data": sel[start:end], "page": page})
}

// logsQuery reads the Akeneo Event Platform Logs API's query (from, to as
// RFC 3339, page from 1, limit), answering 400 when it is malformed.
func logsQuery(w http.ResponseWriter, r *http.Request) (from, to time.Time, page, limit int, ok bool) {
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	page, _ = strconv.Atoi(q.Get("page"))
	limit, _ = strconv.Atoi(q.Get("limit"))
	if err1 != nil || err2 != nil || page < 1 || limit < 1 {
		http.Error(w, `{"message":"bad query"}`, http.StatusBadRequest)
		return from, to, page, limit, false
	}
	return from, to, page, limit, true
}

func akeneoPoller(t *testing.T, a *akeneoServer, k sink.Sink, state string, token string) *Poller {
	t.Helper()
	p, err := NewAkeneo(AkeneoConfig{Common: Common{StateFile: state, Start: 3 * time.Hour, PageSize: 100},
		BaseURL: a.srv.URL, PIMURL: "https://mypim.example", Token: "pim-token", ClientID: "client-1"}, k, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		p.c.auth = func(_ context.Context, r *http.Request) error {
			r.Header.Set("X-PIM-TOKEN", token)
			return nil
		}
	}
	return p
}

func newKafka(t *testing.T) (*kafkatest.Cluster, *sink.Kafka) {
	t.Helper()
	c := kafkatest.Start(t, 1, 3, "events.akeneo-logs", "events.fluent", "events.dlq")
	k, err := sink.NewKafka(sink.KafkaConfig{Brokers: c.Addrs}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return c, k
}

// TestAkeneoOnceAcrossRestartsThrottlingAndMerges: every log reaches Kafka
// once across a restart, throttling and overlapping windows; a merged
// error log (same id, newer timestamp) is re-emitted once, marked updated.
func TestAkeneoOnceAcrossRestartsThrottlingAndMerges(t *testing.T) {
	a := newAkeneoServer(t)
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 250 {
		typ := "action"
		if i%5 == 0 {
			typ = "error"
		}
		a.add(fmt.Sprintf("log-%03d", i), typ, now.Add(-250*25*time.Second).Add(time.Duration(i)*25*time.Second))
	}
	c, k := newKafka(t)
	state := filepath.Join(t.TempDir(), "akeneo.json")
	p := akeneoPoller(t, a, k, state, "")
	st, err := p.Once(context.Background())
	if err != nil || st.Events != 250 || st.Pages != 3 {
		t.Fatalf("first poll: %+v, %v", st, err)
	}
	// New logs, a merge moving log-245 (an error) forward, throttling.
	for i := 250; i < 280; i++ {
		a.add(fmt.Sprintf("log-%03d", i), "action", time.Now().UTC())
	}
	a.merge("log-245", time.Now().UTC().Add(2*time.Second))
	a.mu.Lock()
	a.throttle = 2
	a.mu.Unlock()
	var slept []time.Duration
	p2 := akeneoPoller(t, a, k, state, "") // a restart: the cursor comes from the state file
	p2.c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	// Three seconds later (the injected clock): the new and moved logs are
	// older than the one-second block the poller leaves to settle.
	p2.now = func() time.Time { return time.Now().Add(3 * time.Second) }
	st, err = p2.Once(context.Background())
	if err != nil || st.Events != 31 || st.Updated != 1 || st.Duplicates == 0 {
		t.Fatalf("second poll: %+v, %v (want 30 new + 1 updated, duplicates from the overlap)", st, err)
	}
	if len(slept) != 2 || slept[0] != time.Second {
		t.Errorf("throttled retries slept %v, want Retry-After's 1s twice", slept)
	}
	recs := kafkatest.Consume(t, c.Addrs, "events.akeneo-logs", 281, 20*time.Second)
	counts := map[string]int{}
	updated := 0
	for _, r := range recs {
		counts[r.Headers[sink.HeaderEventID]]++
		if r.Headers[sink.HeaderUpdated] == "true" {
			updated++
			if r.Headers[sink.HeaderEventID] != "log-245" {
				t.Errorf("%s marked updated", r.Headers[sink.HeaderEventID])
			}
		}
	}
	if len(recs) != 281 || len(counts) != 280 || counts["log-245"] != 2 || updated != 1 {
		t.Errorf("%d records, %d ids, log-245 x%d, %d updated", len(recs), len(counts), counts["log-245"], updated)
	}
}

func TestAkeneoAuthFailureIsClear(t *testing.T) {
	a := newAkeneoServer(t)
	_, k := newKafka(t)
	_, err := akeneoPoller(t, a, k, "", "wrong-token").Once(context.Background())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "check the credentials") || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("err = %v", err)
	}
}

// TestAkeneoCursorOlderThanRetention is reported, not silently skipped.
func TestAkeneoCursorOlderThanRetention(t *testing.T) {
	a := newAkeneoServer(t)
	a.add("recent", "action", time.Now().Add(-time.Hour))
	_, k := newKafka(t)
	p := akeneoPoller(t, a, k, "", "")
	p.state.Advance(time.Now().Add(-40*24*time.Hour), time.Time{})
	var logs strings.Builder
	p.log = zerolog.New(&logs)
	st, err := p.Once(context.Background())
	if err != nil || st.Events != 1 {
		t.Fatalf("poll: %+v %v", st, err)
	}
	if testutil.ToFloat64(p.m.gaps) != 1 || !strings.Contains(logs.String(), "older than the API's retention") {
		t.Errorf("retention gap not reported: %s", logs.String())
	}
}

// fluentServer implements the Event API: OAuth password grant, bearer
// tokens that can be revoked, from/to and start/count paging, 5xx on demand.
type fluentServer struct {
	mu       sync.Mutex
	events   []map[string]any
	token    string
	tokens   int
	failNext int
	srv      *httptest.Server
}

func newFluentServer(t *testing.T) *fluentServer {
	f := &fluentServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || r.Form.Get("username") != "relay" || r.Form.Get("password") != "pw" || r.Form.Get("client_secret") != "cs" || r.Form.Get("grant_type") != "password" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		f.tokens++
		f.token = fmt.Sprintf("tok-%d", f.tokens)
		json.NewEncoder(w).Encode(map[string]any{"access_token": f.token, "token_type": "bearer", "expires_in": 3599})
	})
	mux.HandleFunc("/api/v4.1/event", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+f.token || f.token == "" {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		if f.failNext > 0 {
			f.failNext--
			http.Error(w, "upstream error", http.StatusBadGateway)
			return
		}
		q := r.URL.Query()
		from, _ := time.Parse("2006-01-02T15:04:05.000Z", q.Get("from"))
		to, _ := time.Parse("2006-01-02T15:04:05.000Z", q.Get("to"))
		start, _ := strconv.Atoi(q.Get("start"))
		count, _ := strconv.Atoi(q.Get("count"))
		var sel []map[string]any
		for _, e := range f.events {
			ts, _ := time.Parse("2006-01-02T15:04:05.000-0700", e["generatedOn"].(string))
			if !ts.Before(from) && !ts.After(to) && (q.Get("category") == "" || q.Get("category") == e["category"]) {
				sel = append(sel, e)
			}
		}
		start = min(start, len(sel))
		json.NewEncoder(w).Encode(map[string]any{"start": start, "count": count, "results": sel[start:min(start+count, len(sel))]})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fluentServer) add(n int, at func(i int) time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range n {
		id := fmt.Sprintf("fl-%04d", len(f.events))
		f.events = append(f.events, map[string]any{"id": id, "name": nil, "type": "ORCHESTRATION_AUDIT", "accountId": "ACME",
			"category": "ACTION", "context": map[string]any{"rootEntityType": "ORDER", "rootEntityId": strconv.Itoa(i % 11)},
			"generatedOn": at(i).UTC().Format("2006-01-02T15:04:05.000-0700")})
	}
}

func fluentPoller(t *testing.T, f *fluentServer, k sink.Sink, state, suffix string) (*Poller, error) {
	return NewFluent(FluentConfig{Common: Common{StateFile: state, Start: 2 * time.Hour, PageSize: 100}, BaseURL: f.srv.URL,
		Username: "relay", Password: "pw", ClientID: "eventrelay", ClientSecret: secret.String("cs" + suffix)}, k, zerolog.Nop(), nil)
}

// TestFluentOnceAcrossTokenExpiryAndErrors: a revoked token is refreshed
// once on 401, a 502 is retried, and every event reaches Kafka once across
// overlapping windows.
func TestFluentOnceAcrossTokenExpiryAndErrors(t *testing.T) {
	f := newFluentServer(t)
	now := time.Now().UTC()
	f.add(230, func(i int) time.Time { return now.Add(-2330 * time.Second).Add(time.Duration(i) * 10 * time.Second) })
	c, k := newKafka(t)
	state := filepath.Join(t.TempDir(), "fluent.json")
	p, err := fluentPoller(t, f, k, state, "")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Once(context.Background()); err != nil || st.Events != 230 || st.Pages != 3 {
		t.Fatalf("first poll: %+v %v", st, err)
	}
	f.mu.Lock()
	f.token = "revoked"
	f.failNext = 1
	f.mu.Unlock()
	f.add(10, func(int) time.Time { return time.Now().UTC() })
	p.now = func() time.Time { return time.Now().Add(1100 * time.Millisecond) } // the new events have settled
	p.c.sleep = func(context.Context, time.Duration) error { return nil }
	st, err := p.Once(context.Background())
	if err != nil || st.Events != 10 || st.Duplicates == 0 {
		t.Fatalf("second poll: %+v %v", st, err)
	}
	recs := kafkatest.Consume(t, c.Addrs, "events.fluent", 240, 20*time.Second)
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.Headers[sink.HeaderEventID]] = true
		if string(r.Key) == "" || !strings.HasPrefix(string(r.Key), "ORDER:") {
			t.Fatalf("key %q, want ORDER:<id>", r.Key)
		}
	}
	if len(recs) != 240 || len(ids) != 240 {
		t.Errorf("%d records, %d distinct, want 240", len(recs), len(ids))
	}
	if f.tokens != 2 { // the first, and one refresh after the 401
		t.Errorf("%d tokens issued, want 2", f.tokens)
	}
}

func TestFluentBadCredentials(t *testing.T) {
	f := newFluentServer(t)
	_, k := newKafka(t)
	p, err := fluentPoller(t, f, k, "", "-wrong")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Once(context.Background())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "client credentials") || strings.Contains(err.Error(), "cs-wrong") {
		t.Errorf("err = %v", err)
	}
}

func TestPollConfigValidate(t *testing.T) {
	if err := (AkeneoConfig{}).Validate(); err == nil || !strings.Contains(err.Error(), "source.akeneo.pim_url") || !strings.Contains(err.Error(), "source.akeneo.token_file") {
		t.Errorf("akeneo: %v", err)
	}
	if err := (FluentConfig{}).Validate(); err == nil || !strings.Contains(err.Error(), "source.fluent.base_url") {
		t.Errorf("fluent: %v", err)
	}
}

// TestPollConfigNumericFields: negative intervals, sizes and pages are
// errors naming the field (they used to reach the poller: a negative
// interval polled in a busy loop).
func TestPollConfigNumericFields(t *testing.T) {
	ak := AkeneoConfig{PIMURL: "https://pim", Token: "t", ClientID: "c"}
	fl := FluentConfig{BaseURL: "https://x", Username: "u", ClientID: "c", Password: "p", ClientSecret: "s"}
	if err := errors.Join(ak.Validate(), fl.Validate()); err != nil {
		t.Fatalf("valid configurations refused: %v", err)
	}
	tests := []struct {
		err  error
		want string
	}{
		{func() error { c := ak; c.Interval = -time.Minute; return c.Validate() }(), "source.akeneo.interval: must be positive, got -1m0s"},
		{func() error { c := ak; c.PageSize = -1; return c.Validate() }(), "source.akeneo.page_size: must be positive, got -1"},
		{func() error { c := ak; c.FirstPage = -1; return c.Validate() }(), "source.akeneo.first_page: must not be negative, got -1"},
		{func() error { c := ak; c.Retention = -time.Hour; return c.Validate() }(), "source.akeneo.retention: must be positive, got -1h0m0s"},
		{func() error { c := fl; c.Timeout = -time.Second; return c.Validate() }(), "source.fluent.timeout: must be positive, got -1s"},
		{func() error { c := fl; c.Overlap = -time.Second; return c.Validate() }(), "source.fluent.overlap: must be positive, got -1s"},
		{func() error { c := fl; c.Start = -time.Second; return c.Validate() }(), "source.fluent.start: must be positive, got -1s"},
		// These once fell back to the default silently.
		{func() error { c := ak; c.MaxBodySize = -1; return c.Validate() }(), "source.akeneo.max_body_size: must be positive, got -1"},
		{func() error { c := fl; c.OnceAttempts = -5; return c.Validate() }(), "source.fluent.once_attempts: must be positive, got -5"},
	}
	for _, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want %q", tc.err, tc.want)
		}
	}
}
