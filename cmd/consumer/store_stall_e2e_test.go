package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/testwait"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Env is the environment of a consumer reading S3 at url with static
// test credentials and nothing from the machine's AWS configuration.
func s3Env(t *testing.T, url string) []string {
	dir := t.TempDir()
	return append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=", "AWS_SESSION_TOKEN=", "AWS_ENDPOINT_URL=",
		"EVENTRELAY_AWS_ENDPOINTS_S3="+url, "EVENTRELAY_LOG_FORMAT=json")
}

// TestReplayS3BodyGoesSilent: S3 answers an object's GET, sends part of
// the body and then nothing, keeping the connection open (a black-holed
// network path). The replay drops the connection after --read-stall,
// reads on from the same byte with a Range request for the same ETag, and
// delivers every event once with no dead letter (kcat reads it back).
// Before, the read waited forever (GCS) or failed the object as corrupt
// with a false "truncated" dead letter (S3, at the 30 s client timeout).
func TestReplayS3BodyGoesSilent(t *testing.T) {
	backend := s3mem.New()
	fake := gofakes3.New(backend).Server()
	var mu sync.Mutex
	var ranges []string
	silenced := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isObject := r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0
		if !isObject {
			fake.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range")+" if-match "+r.Header.Get("If-Match"))
		first := r.Header.Get("Range") == ""
		if first {
			silenced++
		}
		mu.Unlock()
		if !first {
			fake.ServeHTTP(w, r)
			return
		}
		// Headers and the first 20 KB, then silence until the client hangs up.
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:min(20_000, rec.Body.Len())])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	backend.CreateBucket("exports")
	var want []string
	for o := range 2 {
		var data bytes.Buffer
		for i := range 4000 {
			id := fmt.Sprintf("o%d-%05d", o, i)
			want = append(want, id)
			fmt.Fprintf(&data, `{"events":[{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"2024-02-01T09:%02d:00Z"},"payload":{}}]}`+"\n", id, i%7, i%60)
		}
		key := fmt.Sprintf("public/2024/02/01/09/export-%d", o)
		if _, err := backend.PutObject("exports", key, map[string]string{}, bytes.NewReader(data.Bytes()), int64(data.Len()), nil); err != nil {
			t.Fatal(err)
		}
	}
	kc := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.dlq")
	cmd := exec.Command(consumerBinary(t), "replay", "s3://exports/", "--brokers", kc.Addrs[0], "--http-addr", "off",
		"--read-stall", "1s", "--state", filepath.Join(t.TempDir(), "s.json"))
	cmd.Env = s3Env(t, srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "reading on from the same byte") {
		t.Errorf("no log line says the read was resumed:\n%s", out)
	}
	got := idsIn(t, kc.Addrs, "events.onewelcome")
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, got[id])
		}
	}
	if dead := kafkatest.Kcat(t, kc.Addrs, "events.dlq"); len(dead) != 0 {
		t.Errorf("%d dead letters from valid objects: %v", len(dead), dead[0])
	}
	mu.Lock()
	defer mu.Unlock()
	if silenced != 2 || len(ranges) != 4 {
		t.Errorf("GETs %q: want each object's first GET silenced and one resumed GET each", ranges)
	}
	for _, r := range ranges {
		if strings.HasPrefix(r, "bytes=") && (!strings.HasPrefix(r, "bytes=20000-") || !strings.Contains(r, `if-match "`)) {
			t.Errorf("resumed GET %q: want bytes=20000- for the same ETag", r)
		}
	}
}

// TestReplayS3ListingSilent: an S3 endpoint that accepts connections and
// never answers. The replay says within --progress-timeout that listing
// makes no progress (it was silent until the SDK gave up, 90 s), and a
// SIGTERM ends it at once.
func TestReplayS3ListingSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accepted, never answered
		}
	}()
	cmd := exec.Command(consumerBinary(t), "replay", "s3://exports/", "--sink", "stdout", "--http-addr", "off",
		"--progress-timeout", "1s", "--state", filepath.Join(t.TempDir(), "s.json"))
	cmd.Env = s3Env(t, "http://"+l.Addr().String())
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testwait.Until(t, 10*time.Second, "a warning that listing makes no progress", func() bool {
		return strings.Contains(logs.String(), "listing made no progress")
	}, logs.String)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the replay did not stop within 10 s of SIGTERM while listing\n%s", logs.String())
	}
}
