package poll

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

type discardSink struct{}

func (discardSink) Deliver(context.Context, *sink.Batch) error { return nil }
func (discardSink) Close() error                               { return nil }

func hostilePoller(t *testing.T, h http.HandlerFunc, common Common) *Poller {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	common.StateFile = filepath.Join(t.TempDir(), "akeneo.json")
	p, err := NewAkeneo(AkeneoConfig{Common: common, BaseURL: srv.URL, PIMURL: "https://mypim.example", Token: "pim-token", ClientID: "client-1"},
		discardSink{}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOneShotGivesUpOnPersistentFailure: `poll --once` against an API
// answering 500 forever stops after once_attempts requests (default 8),
// naming the last status, instead of retrying forever. No real sleeps.
func TestOneShotGivesUpOnPersistentFailure(t *testing.T) {
	requests := 0
	p := hostilePoller(t, func(w http.ResponseWriter, r *http.Request) {
		requests++
		http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
	}, Common{})
	sleeps := 0
	p.c.sleep = func(context.Context, time.Duration) error {
		if sleeps++; sleeps > 100 {
			return errors.New("still retrying after 100 sleeps")
		}
		return nil
	}
	_, err := p.OneShot(context.Background())
	if err == nil || !strings.Contains(err.Error(), "giving up after 8 attempts") || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v, want giving up after 8 attempts naming HTTP 500", err)
	}
	if requests != 8 || sleeps != 7 {
		t.Errorf("%d requests, %d sleeps; want 8 and 7", requests, sleeps)
	}
	// The continuous poll keeps retrying: only the one-shot run is bounded.
	sleeps, requests = 90, 0
	if _, err := p.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "still retrying") {
		t.Errorf("continuous poll: err = %v, want it still retrying", err)
	}
}

// TestPollBodyTooLarge: a page past max_body_size (default 64 MiB) fails
// with "response larger than N bytes", not a JSON error about the
// truncated body.
func TestPollBodyTooLarge(t *testing.T) {
	huge := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("["))
			chunk := []byte(strings.Repeat(" ", 1<<20))
			for written := 0; written < n; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte("]"))
		}
	}
	tests := []struct {
		name   string
		body   int
		common Common
		want   string
	}{
		{"default limit", DefaultMaxBodySize + 1<<20, Common{}, "response larger than 67108864 bytes"},
		{"configured limit", 2 << 20, Common{MaxBodySize: 1 << 20}, "response larger than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := hostilePoller(t, huge(tc.body), tc.common)
			p.c.sleep = func(context.Context, time.Duration) error { return errors.New("retried") }
			_, err := p.Once(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
