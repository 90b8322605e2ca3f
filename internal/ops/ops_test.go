package ops

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestEndpoints(t *testing.T) {
	s := NewServer()
	if code, _ := get(t, s, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, s, "/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before SetReady = %d %q", code, body)
	}
	s.SetReady(func() error { return errors.New("no shard leases held yet") })
	if code, body := get(t, s, "/readyz"); code != 503 || !strings.Contains(body, "no shard leases") {
		t.Errorf("/readyz not ready = %d %q", code, body)
	}
	s.SetReady(func() error { return nil })
	if code, _ := get(t, s, "/readyz"); code != 200 {
		t.Errorf("/readyz ready = %d", code)
	}
	s.Drain()
	if code, body := get(t, s, "/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz draining = %d %q", code, body)
	}
	if code, _ := get(t, s, "/healthz"); code != 200 {
		t.Error("/healthz must stay 200 while draining")
	}
	if code, body := get(t, s, "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d", code)
	}
}
