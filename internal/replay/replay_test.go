package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rs/zerolog"
)

var day1 = time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)

// exportSet is a generated export: object key -> bytes, and the time of
// every event id.
type exportSet struct {
	objects map[string][]byte
	times   map[string]time.Time
}

func (x exportSet) idsIn(w Window) map[string]bool {
	ids := map[string]bool{}
	for id, t := range x.times {
		if w.Contains(t) {
			ids[id] = true
		}
	}
	return ids
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// firehoseExport lays out 2 days x 24 hours of OneWelcome Firehose objects
// under public/ (and a few under log/): gzip and plain, JSON lines and
// envelopes concatenated without separators; the last event of each file
// spills into the next hour, as Firehose buffering does.
func firehoseExport() exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	n := 0
	for h := range 48 {
		hour := day1.Add(time.Duration(h) * time.Hour)
		for _, cat := range []string{"public", "log"} {
			if cat == "log" && h%6 != 0 {
				continue
			}
			var body bytes.Buffer
			for env := range 3 {
				var evs []string
				for i := range 2 {
					t := hour.Add(time.Duration(env*20+i*7) * time.Minute)
					if env == 2 && i == 1 {
						t = hour.Add(65 * time.Minute)
					}
					id := fmt.Sprintf("ow-%05d", n)
					n++
					x.times[id] = t
					evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"%s","aggregateId":"agg-%d","tenantId":"t1","occurredTime":"%s"},"payload":{}}`,
						id, cat, n%7, t.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000-07:00")))
				}
				body.WriteString(`{"events":[` + strings.Join(evs, ",") + `]}`)
				if h%2 == 0 {
					body.WriteByte('\n') // odd hours: concatenated with no separator
				}
			}
			data := body.Bytes()
			if h%3 != 0 {
				data = gz(data)
			}
			x.objects[fmt.Sprintf("%s/%s/eventrelay-export-1-%s-%d", cat, hour.Format("2006/01/02/15"), hour.Format("2006-01-02-15-04-05"), h)] = data
		}
	}
	return x
}

func writeDir(t *testing.T, x exportSet) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range x.objects {
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func s3Store(t *testing.T, bucket string, x exportSet) S3Store {
	t.Helper()
	return s3StoreWith(t, bucket, x, nil)
}

// s3StoreWith is s3Store with the fake's handler wrapped by wrap (nil:
// unwrapped).
func s3StoreWith(t *testing.T, bucket string, x exportSet, wrap func(http.Handler) http.Handler) S3Store {
	t.Helper()
	h := gofakes3.New(s3mem.New()).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
	c := NewS3Client(cfg, srv.URL)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	for k, v := range x.objects {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	return S3Store{Client: c, Bucket: bucket}
}

// gcsStore serves objects from fake-gcs-server; objects whose bytes are
// gzip are stored with Content-Encoding: gzip when encode says so, so GCS
// would transcode them.
func gcsStore(t *testing.T, bucket string, x exportSet, encode func(key string) bool) GCSStore {
	t.Helper()
	var objs []fakestorage.Object
	for k, v := range x.objects {
		attrs := fakestorage.ObjectAttrs{BucketName: bucket, Name: k, ContentType: "application/json"}
		if envelope.IsGzip(v) && encode(k) {
			attrs.ContentEncoding = "gzip"
		}
		objs = append(objs, fakestorage.Object{ObjectAttrs: attrs, Content: v})
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{InitialObjects: objs, Host: "127.0.0.1", Scheme: "http", PublicHost: "127.0.0.1", Writer: ioDiscard{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	t.Setenv("STORAGE_EMULATOR_HOST", srv.URL())
	hc, endpoint, err := NewGCSClient(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return GCSStore{HTTP: hc, Endpoint: endpoint, Bucket: bucket}
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// countingStore records which prefixes were listed and objects opened.
type countingStore struct {
	Store
	mu     sync.Mutex
	listed []string
	opened []string
}

func (c *countingStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	c.mu.Lock()
	c.listed = append(c.listed, prefix)
	c.mu.Unlock()
	return c.Store.List(ctx, prefix, fn)
}

func (c *countingStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	c.mu.Lock()
	c.opened = append(c.opened, key)
	c.mu.Unlock()
	return c.Store.Open(ctx, key, at)
}

func replayInto(t *testing.T, k sink.Sink, store Store, prefix string, layout Layout, w Window, opts Options) (Summary, error) {
	t.Helper()
	ctx := context.Background()
	found, objs, err := Plan(ctx, store, prefix, layout, w, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, err := LoadState(filepath.Join(t.TempDir(), "state.json"), []string{store.Name()}, w, false)
	if err != nil {
		t.Fatal(err)
	}
	opts.Window = w
	return NewRunner(opts, k, state, zerolog.Nop()).Run(ctx, []Source{{Store: store, Objects: objs, Format: found.DefaultFormat()}})
}

func newKafka(t *testing.T) (*kafkatest.Cluster, *sink.Kafka) {
	t.Helper()
	c := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.fulfillmenttools", "events.infobip", "events.dlq")
	k, err := sink.NewKafka(sink.KafkaConfig{Brokers: c.Addrs}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return c, k
}

// checkExactly reads topic back with kcat and compares the event ids with want.
func checkExactly(t *testing.T, c *kafkatest.Cluster, topic string, want map[string]bool) {
	t.Helper()
	recs := kafkatest.Kcat(t, c.Addrs, topic)
	got := map[string]int{}
	for _, r := range recs {
		got[r.Headers[sink.HeaderEventID]]++
	}
	var missing, extra []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range got {
		if !want[id] || n > 1 {
			extra = append(extra, fmt.Sprintf("%s(x%d)", id, n))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d records; missing %d %v; unexpected or repeated %d %v", topic, len(recs), len(missing), head(missing), len(extra), head(extra))
	}
}

func head(s []string) []string { return s[:min(5, len(s))] }

// TestReplayFirehoseWindow replays 2 days x 24 hours of Firehose objects
// from a directory and from S3: every event in the window reaches Kafka
// once (read back by kcat), none outside it, and only the hour folders of
// the window are listed, widened by one hour before it (a file sits in the
// hour of its oldest record) and one after it (the default lateness: a
// file of the next hour may hold an event of the window's last instants).
func TestReplayFirehoseWindow(t *testing.T) {
	x := firehoseExport()
	w := Window{From: day1.Add(6 * time.Hour), To: day1.Add(42 * time.Hour)}
	for name, store := range map[string]Store{"dir": DirStore{Root: writeDir(t, x)}, "s3": s3Store(t, "onewelcome-export", x)} {
		t.Run(name, func(t *testing.T) {
			c, k := newKafka(t)
			cs := &countingStore{Store: store}
			sum, err := replayInto(t, k, cs, "", LayoutAuto, w, Options{Concurrency: 3, BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			checkExactly(t, c, "events.onewelcome", x.idsIn(w))
			if sum.Outside == 0 || sum.Dead != 0 {
				t.Errorf("summary %+v: want events outside the window filtered and no dead letters", sum)
			}
			for _, p := range cs.listed {
				if h, ok := hourOf(p); ok && (h.Before(w.From.Add(-time.Hour)) || h.After(w.To)) {
					t.Errorf("listed %s, outside the widened window", p)
				}
			}
			if want := 2 * 38; len(cs.listed) != want { // (36 hours + 2 widened) x 2 categories
				t.Errorf("listed %d hour prefixes, want %d", len(cs.listed), want)
			}
		})
	}
}

// fulfillmenttoolsExport lays out daily folders of gzipped JSON lines.
func fulfillmenttoolsExport(days int) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	n := 0
	for d := range days {
		day := day1.Add(time.Duration(d) * 24 * time.Hour)
		for f := range 2 {
			var body bytes.Buffer
			for i := range 12 {
				t := day.Add(time.Duration(f*12+i) * time.Hour).Add(13 * time.Minute)
				id := fmt.Sprintf("ft-%04d", n)
				n++
				x.times[id] = t
				fmt.Fprintf(&body, `{"id":"%s","eventName":"order-created_event-v1","payload":{"id":"order-%d"},"created":"%s"}`+"\n", id, n%9, t.Format("2006-01-02T15:04:05.000000+00:00"))
			}
			x.objects[fmt.Sprintf("%s/%012d.json.gz", day.Format("2006-01-02"), f)] = gz(body.Bytes())
		}
	}
	return x
}

// TestReplayFulfillmenttoolsGCS reads daily folders from fake-gcs-server,
// half of the objects stored with Content-Encoding: gzip (which GCS would
// transcode): each is gunzipped exactly once, only the window's days, the
// one before and the next (late files) are listed, and the tenant comes from the bucket name.
func TestReplayFulfillmenttoolsGCS(t *testing.T) {
	x := fulfillmenttoolsExport(4)
	bucket := "ocff-acme-prd-public-events-export-bucket"
	store := gcsStore(t, bucket, x, func(key string) bool { return strings.HasSuffix(key, "0.json.gz") })
	w := Window{From: day1.Add(30 * time.Hour), To: day1.Add(60 * time.Hour)}
	c, k := newKafka(t)
	cs := &countingStore{Store: store}
	found, objs, err := Plan(context.Background(), cs, "", LayoutAuto, w, AutoLateness)
	if err != nil || found != LayoutDaily {
		t.Fatalf("plan: layout %s, err %v", found, err)
	}
	if len(cs.listed) != 4 || len(objs) != 8 {
		t.Errorf("listed %v (%d objects), want the day before the window (folders may be local days), its 2 days and the next (late files)", cs.listed, len(objs))
	}
	state, _ := LoadState("", nil, w, false)
	r := NewRunner(Options{Window: w, Tenant: TenantFromBucket(bucket)}, k, state, zerolog.Nop())
	if _, err := r.Run(context.Background(), []Source{{Store: cs, Objects: objs, Format: found.DefaultFormat()}}); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, c, "events.fulfillmenttools", x.idsIn(w))
	for _, r := range kafkatest.Consume(t, c.Addrs, "events.fulfillmenttools", 1, 10*time.Second) {
		if r.Headers[sink.HeaderTenant] != "acme" {
			t.Errorf("tenant header %q, want acme (from the bucket name)", r.Headers[sink.HeaderTenant])
		}
	}
}

// TestReplayInfobipS3 selects Infobip exports by the times in their names.
func TestReplayInfobipS3(t *testing.T) {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	for i := range 6 {
		start := day1.Add(time.Duration(i) * 6 * time.Hour)
		var body bytes.Buffer
		for j := range 5 {
			ts := start.Add(time.Duration(j) * time.Hour)
			id := fmt.Sprintf("ib-%d-%d", i, j)
			x.times[id] = ts
			fmt.Fprintf(&body, `{"eventId":"%s","definitionId":"purchase","personId":"p%d","externalPersonId":"x","timestamp":"%s","properties":{}}`+"\n", id, j, ts.Format("2006-01-02T15:04:05.000-0700"))
		}
		x.objects[fmt.Sprintf("exports/req%d-events-%s-%s.json.gz", i, start.Format("20060102T150405Z"), start.Add(6*time.Hour).Format("20060102T150405Z"))] = gz(body.Bytes())
	}
	store := &countingStore{Store: s3Store(t, "infobip-export", x)}
	w := Window{From: day1.Add(7 * time.Hour), To: day1.Add(20 * time.Hour)}
	c, k := newKafka(t)
	if _, err := replayInto(t, k, store, "exports/", LayoutAuto, w, Options{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	checkExactly(t, c, "events.infobip", x.idsIn(w))
	if len(store.opened) != 3 {
		t.Errorf("opened %v, want only the 3 exports whose names meet the window", store.opened)
	}
}

// TestReplayResumesAfterInterruption cancels a replay mid-object; the rerun
// delivers everything, with duplicates only from the object in flight.
func TestReplayResumesAfterInterruption(t *testing.T) {
	x := firehoseExport()
	store := DirStore{Root: writeDir(t, x)}
	c, k := newKafka(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, objs, err := Plan(ctx, store, "public/", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "state.json")
	state, _ := LoadState(statePath, []string{"x"}, Window{}, false)
	cut := &cancelAfter{Sink: k, n: 10, cancel: cancel}
	sum1, err := NewRunner(Options{Concurrency: 1, BatchSize: 2}, cut, state, zerolog.Nop()).Run(ctx, []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}})
	if err == nil {
		t.Fatal("the interrupted run reported success")
	}
	state, err = LoadState(statePath, []string{"x"}, Window{}, false)
	if err != nil {
		t.Fatal(err)
	}
	sum2, err := NewRunner(Options{Concurrency: 1, BatchSize: 2}, k, state, zerolog.Nop()).Run(context.Background(), []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}})
	if err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Kcat(t, c.Addrs, "events.onewelcome")
	got := map[string]int{}
	for _, r := range recs {
		got[r.Headers[sink.HeaderEventID]]++
	}
	dups := 0
	for _, n := range got {
		dups += max(n-1, 0)
	}
	want := 0
	for id := range x.times {
		if got[id] == 0 && isPublic(x, id) {
			t.Fatalf("event %s lost across the interruption", id)
		}
		if isPublic(x, id) {
			want++
		}
	}
	t.Logf("first run %d events, rerun %d events (%d objects already done), %d duplicates", sum1.Events, sum2.Events, sum2.Skipped, dups)
	if sum2.Skipped == 0 || dups > 6 { // one object holds 6 events
		t.Errorf("rerun skipped %d objects and repeated %d events; want completed objects skipped and duplicates only from the object in flight", sum2.Skipped, dups)
	}
	if len(recs) != want+dups {
		t.Errorf("%d records, want %d events + %d duplicates", len(recs), want, dups)
	}
}

// isPublic reports whether the event is in a public/ object (the replayed prefix).
func isPublic(x exportSet, id string) bool {
	for k, v := range x.objects {
		if strings.HasPrefix(k, "public/") {
			data := v
			if envelope.IsGzip(v) {
				zr, _ := gzip.NewReader(bytes.NewReader(v))
				data, _ = io.ReadAll(zr)
			}
			if bytes.Contains(data, []byte(`"`+id+`"`)) {
				return true
			}
		}
	}
	return false
}

// cancelAfter cancels the run after n acknowledged batches.
type cancelAfter struct {
	sink.Sink
	mu     sync.Mutex
	n      int
	cancel func()
}

func (c *cancelAfter) Deliver(ctx context.Context, b *sink.Batch) error {
	if err := c.Sink.Deliver(ctx, b); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return nil
}

// TestReplayCorruptObject: a truncated gzip object is reported with its key
// and position, its good prefix is delivered, the other objects are too,
// and the run reports the failure.
func TestReplayCorruptObject(t *testing.T) {
	x := fulfillmenttoolsExport(1)
	var big bytes.Buffer
	for i := range 400 {
		id := fmt.Sprintf("cut-%04d", i)
		x.times[id] = day1.Add(time.Minute)
		fmt.Fprintf(&big, `{"id":"%s","eventName":"e","payload":{"id":"%s"},"created":"2024-02-01T00:01:00Z"}`+"\n", id, id)
	}
	z := gz(big.Bytes())
	x.objects["2024-02-01/000000000009.json.gz"] = z[:len(z)/2]
	c, k := newKafka(t)
	sum, err := replayInto(t, k, DirStore{Root: writeDir(t, x)}, "", LayoutDaily, Window{}, Options{Tenant: "acme"})
	if err == nil || !strings.Contains(err.Error(), "2024-02-01/000000000009.json.gz") || !strings.Contains(err.Error(), "corrupt at line") {
		t.Fatalf("err = %v, want the corrupt object named with its position", err)
	}
	if sum.Failed != 1 || sum.Objects != 2 {
		t.Errorf("summary %+v", sum)
	}
	recs := kafkatest.Kcat(t, c.Addrs, "events.fulfillmenttools")
	prefix, others := 0, 0
	for _, r := range recs {
		if strings.HasPrefix(r.Headers[sink.HeaderEventID], "cut-") {
			prefix++
		} else {
			others++
		}
	}
	if prefix == 0 || prefix >= 400 || others != 24 {
		t.Errorf("delivered %d of the corrupt object's events and %d others, want a good prefix and all 24", prefix, others)
	}
}
