package poll

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestClientRetriesOnlyTransient: 408, 425, 429 and 5xx are asked again;
// other 4xx, 501 and a certificate the client does not trust stop at once
// with the cause.
func TestClientRetriesOnlyTransient(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int // answered in turn; the last one repeats
		tls      bool
		wantErr  string // "" for success
		wantTry  int    // requests made (or sleeps+1 for TLS)
	}{
		{"408 then ok", []int{408, 200}, false, "", 2},
		{"425 then ok", []int{425, 200}, false, "", 2},
		{"429 and 503 then ok", []int{429, 503, 200}, false, "", 3},
		{"404 stops", []int{404}, false, "HTTP 404", 1},
		{"501 stops", []int{501}, false, "HTTP 501", 1},
		{"502 until giving up names the status", []int{502}, false, "giving up after 4 attempts: HTTP 502", 4},
		{"untrusted certificate stops", []int{200}, true, "certificate", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				s := tc.statuses[min(n, len(tc.statuses)-1)]
				n++
				mu.Unlock()
				w.WriteHeader(s)
				w.Write([]byte(`{"data":[]}`))
			})
			srv := httptest.NewServer(h)
			if tc.tls {
				srv.Close()
				srv = httptest.NewTLSServer(h)
			}
			defer srv.Close()
			sleeps := 0
			c := &client{http: &http.Client{Timeout: 5 * time.Second}, log: zerolog.Nop(), maxBackoff: time.Second, maxAttempts: 4,
				sleep: func(context.Context, time.Duration) error { sleeps++; return nil }}
			_, err := c.get(context.Background(), srv.URL+"/logs?page=1")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("get = %v, want error containing %q", err, tc.wantErr)
			}
			if tc.tls {
				n = sleeps + 1
			}
			if n != tc.wantTry {
				t.Errorf("%d attempts, want %d", n, tc.wantTry)
			}
		})
	}
}
