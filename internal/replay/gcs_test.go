package replay

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestGCSStoreReadsStoredBytes: an object stored gzip-encoded is read as
// stored (the bytes the listing's size counts, still gzip), so the replay
// state's byte offsets are offsets in the object and the framer gunzips it
// once; transient answers (503, 429) are asked again, a 404 is not.
func TestGCSStoreReadsStoredBytes(t *testing.T) {
	x := fulfillmenttoolsExport(1)
	bucket := "ocff-acme-prd-public-events-export-bucket"
	var gz string
	for k, v := range x.objects {
		if envelope.IsGzip(v) {
			gz = k
		}
	}
	if gz == "" {
		t.Fatal("the fixture has no gzip object")
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Scheme: "http", PublicHost: "127.0.0.1", Writer: ioDiscard{},
		InitialObjects: []fakestorage.Object{{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: gz, ContentEncoding: "gzip"}, Content: x.objects[gz]}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	// A front that fails the first two media reads and list calls.
	target, _ := url.Parse(srv.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var media, lists atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("alt") == "media" && media.Add(1) <= 2:
			http.Error(w, `{"error":{"code":503,"message":"backend unavailable"}}`, http.StatusServiceUnavailable)
			return
		case strings.HasSuffix(r.URL.Path, "/o") && lists.Add(1) <= 2:
			http.Error(w, `{"error":{"code":429,"message":"slow down"}}`, http.StatusTooManyRequests)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Setenv("STORAGE_EMULATOR_HOST", front.URL)
	hc, endpoint, err := NewGCSClient(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	g := GCSStore{HTTP: hc, Endpoint: endpoint, Bucket: bucket, Attempts: 3}
	var listed []Object
	if err := g.List(context.Background(), "", func(o Object) error { listed = append(listed, o); return nil }); err != nil {
		t.Fatalf("list after two 429s: %v", err)
	}
	if len(listed) != 1 || listed[0].Key != gz || listed[0].Size != int64(len(x.objects[gz])) {
		t.Fatalf("listed %+v, want %s of %d bytes", listed, gz, len(x.objects[gz]))
	}
	rc, _, err := g.Open(context.Background(), gz, ReadAt{})
	if err != nil {
		t.Fatalf("open after two 503s: %v", err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, x.objects[gz]) {
		t.Errorf("read %d bytes (gzip: %v), want the %d stored gzip bytes", len(got), envelope.IsGzip(got), len(x.objects[gz]))
	}
	if _, _, err := g.Open(context.Background(), "missing.json.gz", ReadAt{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing object: %v, want a 404 at once", err)
	}
	if n := media.Load(); n != 4 {
		t.Errorf("%d media requests, want 2 refused + 1 read + 1 for the missing object (404 not retried)", n)
	}
}

// TestGCSStoreSilentPeer: an endpoint that accepts connections and never
// answers (a stalled proxy or server) fails each attempt after the header
// timeout; the attempts are bounded and the error says what timed out,
// instead of the replay hanging.
func TestGCSStoreSilentPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			held = append(held, c) // accepted, never answered
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	t.Setenv("STORAGE_EMULATOR_HOST", "http://"+ln.Addr().String())
	hc, endpoint, err := newGCSClient(context.Background(), "", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	g := GCSStore{HTTP: hc, Endpoint: endpoint, Bucket: "b", Attempts: 2}
	errc := make(chan error, 1)
	go func() { _, _, err := g.Open(context.Background(), "a.json", ReadAt{}); errc <- err }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "timeout awaiting response headers") {
			t.Errorf("open against a silent peer: %v, want a header timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("open against a silent peer still waiting after 20 s")
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (Attempts)", n)
	}
}
