package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rs/zerolog"
)

// bigExport is objects hourly Firehose objects of n events each (~300
// bytes per event), gzip for odd ones.
func bigExport(objects, n int) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	for o := range objects {
		hour := day1.Add(time.Duration(o) * time.Hour)
		var b bytes.Buffer
		for i := range n {
			id := fmt.Sprintf("big-%d-%05d", o, i)
			t := hour.Add(time.Duration(i) * time.Second)
			x.times[id] = t
			fmt.Fprintf(&b, `{"events":[{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"agg-%d","tenantId":"t1","occurredTime":"%s"},"payload":{"pad":"%s"}}]}`+"\n",
				id, i%13, t.Format(time.RFC3339), strings.Repeat("p", 100+i%150))
		}
		data := b.Bytes()
		if o%2 == 1 {
			data = gz(data)
		}
		x.objects[fmt.Sprintf("public/%s/export-%d", hour.Format("2006/01/02/15"), o)] = data
	}
	return x
}

// flakyStore cuts the bodies of its first faults opens after a random
// number of bytes, failing them the ways networks do: the connection
// reset, closed early (unexpected EOF), or silent (a read that blocks
// until the body is closed). It records where each open started.
type flakyStore struct {
	Store
	rng    *rand.Rand
	maxCut int // bodies fail after 0 to maxCut-1 bytes
	// firstCut, when set, is where the first open of each object fails.
	firstCut int
	mu       sync.Mutex
	faults   int
	fired    int // faults that struck (the object was longer than the cut)
	opens    map[string][]ReadAt
}

func (f *flakyStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	rc, _, err := f.Store.Open(ctx, key, ReadAt{From: at.From}) // versions are faked here
	if err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opens == nil {
		f.opens = map[string][]ReadAt{}
	}
	f.opens[key] = append(f.opens[key], at)
	version := fmt.Sprintf("v-%s", key) // a fixed version per object, checked on resume
	if at.Version != "" && at.Version != version {
		rc.Close()
		return nil, "", fmt.Errorf("version %q asked, object is %q", at.Version, version)
	}
	if f.faults == 0 {
		return rc, version, nil
	}
	f.faults--
	kinds := []error{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, io.ErrUnexpectedEOF, nil}
	left := f.rng.IntN(f.maxCut)
	if f.firstCut > 0 && at.From == 0 {
		left = f.firstCut
	}
	return &faultyBody{rc: rc, left: left, fail: kinds[f.faults%3], closed: make(chan struct{}), fired: f.fire}, version, nil
}

func (f *flakyStore) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fired++
}

// faultyBody serves left bytes, then fails with fail, or (fail nil)
// blocks until closed.
type faultyBody struct {
	rc     io.ReadCloser
	left   int
	fail   error
	once   sync.Once
	closed chan struct{}
	fired  func()
	struck bool
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		if !b.struck {
			b.struck = true
			b.fired()
		}
		if b.fail != nil {
			return 0, b.fail
		}
		<-b.closed
		return 0, net.ErrClosed
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *faultyBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.rc.Close()
}

// TestReplayResumesBrokenReads: object bodies reset, closed early or gone
// silent mid-read are read on from the byte they stopped at, the same
// version of the object, and every event is delivered exactly once with no
// dead letter. Before, each such object failed as "corrupt" with a false
// truncated dead letter, and a silent one blocked the replay for good.
func TestReplayResumesBrokenReads(t *testing.T) {
	x := bigExport(4, 3000)
	store := &flakyStore{Store: DirStore{Root: writeDir(t, x)}, rng: rand.New(rand.NewPCG(3, 4)), maxCut: 20_000, faults: 12}
	var m memSink
	sum, err := replayInto(t, &m, store, "", LayoutFirehose, Window{}, Options{Concurrency: 2, ReadStall: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("replay: %v (summary %+v)", err, sum)
	}
	m.checkOnce(t, x.idsIn(Window{}))
	if sum.Failed != 0 || sum.Dead != 0 {
		t.Errorf("summary %+v: want no failed object and no dead letter", sum)
	}
	resumed := 0
	for key, opens := range store.opens {
		for i, at := range opens[1:] {
			resumed++
			if at.Version != "v-"+key || at.From <= opens[i].From {
				t.Errorf("%s: open %d at %+v after %+v: want the same version, further on", key, i+1, at, opens[i])
			}
		}
	}
	if resumed != store.fired || resumed < 6 {
		t.Errorf("%d reads resumed, want one per fault that struck (%d of 12)", resumed, store.fired)
	}
}

// TestReplayResumeGivesUp: a store whose body fails again and again at
// about the same byte fails the object after readResumes resumed reads,
// naming the cause. The events before are delivered; the value cut off
// is unread, not bad: no dead letter (a false "truncated" one was sent).
func TestReplayResumeGivesUp(t *testing.T) {
	x := bigExport(1, 3000)
	store := &flakyStore{Store: DirStore{Root: writeDir(t, x)}, rng: rand.New(rand.NewPCG(1, 1)), firstCut: 50_000, maxCut: 100, faults: 1000}
	var m memSink
	sum, err := replayInto(t, &m, store, "", LayoutFirehose, Window{}, Options{ReadStall: 50 * time.Millisecond})
	if err == nil || sum.Failed != 1 || !strings.Contains(err.Error(), fmt.Sprintf("failed again after %d resumed reads in a row", readResumes)) {
		t.Fatalf("err %v, summary %+v: want the object failed after %d resumed reads", err, sum, readResumes)
	}
	if sum.Dead != 0 || sum.Events < 100 {
		t.Errorf("summary %+v: want the events before the failure delivered and no dead letter", sum)
	}
	if opens := openCount(store); opens != readResumes+1 {
		t.Errorf("%d opens, want the first and %d resumed", opens, readResumes)
	}
}

// TestS3SlowReadOutlivesRequestTimeout: an S3 object read more slowly
// than the AWS client's whole-request timeout (30 s in production, 1 s
// here) is read to the end without a failure or a resumed read: the body
// is read with a client bounded per read, not per request. Before, the
// object failed as corrupt at the timeout (found by an independent tester
// replaying with --rate).
func TestS3SlowReadOutlivesRequestTimeout(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient: awshttp.NewBuildableClient().WithTimeout(time.Second)}
	c := NewS3Client(cfg, srv.URL)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("slow")}); err != nil {
		t.Fatal(err)
	}
	x := bigExport(1, 3000)
	for k, v := range x.objects {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("slow"), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	store := S3Store{Client: c, Bucket: "slow", BodyHTTP: BodyHTTPClient(cfg, 30*time.Second)}
	m := memSink{hook: func(context.Context) error { time.Sleep(40 * time.Millisecond); return nil }}
	start := time.Now()
	found, objs, err := Plan(ctx, store, "", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := LoadState(filepath.Join(t.TempDir(), "s.json"), []string{"s3://slow"}, Window{}, false)
	r := NewRunner(Options{BatchSize: 50, InFlight: 1}, &m, state, zerolog.Nop())
	sum, err := r.Run(ctx, []Source{{Store: store, Objects: objs, Format: found.DefaultFormat()}})
	if err != nil || sum.Failed != 0 {
		t.Fatalf("slow read: %v, summary %+v", err, sum)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("the read took %s: not longer than the 1 s request timeout, so it proves nothing", took)
	}
	m.checkOnce(t, x.idsIn(Window{}))
	if n := r.Progress.resumes.Load(); n != 0 {
		t.Errorf("%d reads resumed: the body was still cut by the request timeout", n)
	}
}

// TestStoresOpenAt: every store opens an object at a byte offset, and S3
// and GCS read the version an earlier open returned, or fail once the
// object was replaced.
func TestStoresOpenAt(t *testing.T) {
	const key = "public/2024/02/01/09/obj"
	x := exportSet{objects: map[string][]byte{key: []byte("0123456789")}}
	s3s, s3Headers := s3StoreRecording(t, "open-at", x)
	stores := map[string]Store{
		"dir": DirStore{Root: writeDir(t, x)},
		"s3":  s3s,
		"gcs": gcsStore(t, "open-at", x, func(string) bool { return false }),
	}
	ctx := context.Background()
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			rc, version, err := st.Open(ctx, key, ReadAt{})
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
			if version == "" {
				t.Errorf("no version from the first open")
			}
			rc, _, err = st.Open(ctx, key, ReadAt{From: 4, Version: version})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != "456789" {
				t.Errorf("read %q (%v) from byte 4, want 456789", b, err)
			}
			if name == "s3" {
				// gofakes3 ignores If-Match (S3 answers 412 Precondition
				// Failed to a mismatch): the request asks for it, and the
				// ETag answered is checked too.
				h := s3Headers()
				if h.Get("If-Match") != version || h.Get("Range") != "bytes=4-" {
					t.Errorf("resumed GET sent If-Match %q, Range %q; want %q, bytes=4-", h.Get("If-Match"), h.Get("Range"), version)
				}
			}
			other := "1" + version // GCS generations are numbers
			if _, _, err := st.Open(ctx, key, ReadAt{From: 4, Version: other}); !errors.Is(err, ErrObjectReplaced) {
				t.Errorf("another version of the object: %v, want ErrObjectReplaced", err)
			}
		})
	}
	// A store that ignores Range and answers the whole object: read at
	// the offset it would splice the object's start in; refused.
	deaf := s3StoreWith(t, "no-range", x, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { r.Header.Del("Range"); fake.ServeHTTP(w, r) })
	})
	if _, _, err := deaf.Open(ctx, key, ReadAt{From: 4}); err == nil || !strings.Contains(err.Error(), "asked for the bytes from 4 on") {
		t.Errorf("a store ignoring Range: %v, want a refusal", err)
	}
	// S3 answers a mismatched If-Match with 412 Precondition Failed (gofakes3
	// does not: this front does, as S3 documents).
	strict := s3StoreWith(t, "if-match", x, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-Match") != "" {
				w.WriteHeader(http.StatusPreconditionFailed)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-Match</Condition></Error>`))
				return
			}
			fake.ServeHTTP(w, r)
		})
	})
	if _, _, err := strict.Open(ctx, key, ReadAt{From: 4, Version: `"0123"`}); !errors.Is(err, ErrObjectReplaced) {
		t.Errorf("S3 answering 412: %v, want ErrObjectReplaced", err)
	}
}

// TestReplayObjectReplacedBetweenRuns: an object replaced (same size,
// other events) after a run acknowledged part of it is reported replaced
// by the rerun instead of read on at the old offset, which spliced two
// versions and exited 0 (found by an independent tester).
func TestReplayObjectReplacedBetweenRuns(t *testing.T) {
	x := bigExport(1, 3000)
	root := writeDir(t, x)
	store := DirStore{Root: root}
	ctx, cancel := context.WithCancel(context.Background())
	_, objs, err := Plan(ctx, store, "", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "state.json")
	state, _ := LoadState(statePath, []string{"x"}, Window{}, false)
	var m memSink
	n := 0
	m.hook = func(context.Context) error {
		if n++; n == 5 {
			cancel()
		}
		return nil
	}
	if _, err := NewRunner(Options{Concurrency: 1, BatchSize: 100}, &m, state, zerolog.Nop()).Run(ctx, []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}}); err == nil {
		t.Fatal("the interrupted run reported success")
	}
	if _, off := state.Resume(store.Name() + "/" + objs[0].Key); off == 0 {
		t.Fatal("the first run recorded no progress: the test proves nothing")
	}
	// The same size, other ids, a later time.
	path := filepath.Join(root, filepath.FromSlash(objs[0].Key))
	old, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.ReplaceAll(old, []byte(`"big-0-`), []byte(`"new-0-`)), 0o644)
	os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	state, _ = LoadState(statePath, []string{"x"}, Window{}, false)
	m.hook = nil
	sum, err := NewRunner(Options{Concurrency: 1}, &m, state, zerolog.Nop()).Run(context.Background(), []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}})
	if !errors.Is(err, ErrObjectReplaced) && !strings.Contains(fmt.Sprint(err), "object replaced") || sum.Failed != 1 {
		t.Fatalf("rerun after the object was replaced: %v, summary %+v; want it failed as replaced", err, sum)
	}
	for id := range m.ids {
		if strings.HasPrefix(id, "new-") {
			t.Fatalf("the rerun delivered %s from the new version at the old offset", id)
		}
	}
}

// s3StoreRecording is s3Store whose server records the headers of the
// last GET of an object.
func s3StoreRecording(t *testing.T, bucket string, x exportSet) (S3Store, func() http.Header) {
	t.Helper()
	var mu sync.Mutex
	var last http.Header
	st := s3StoreWith(t, bucket, x, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0 {
				mu.Lock()
				last = r.Header.Clone()
				mu.Unlock()
			}
			fake.ServeHTTP(w, r)
		})
	})
	return st, func() http.Header { mu.Lock(); defer mu.Unlock(); return last }
}

// openCount is how often the store's only object was opened.
func openCount(f *flakyStore) int {
	for _, opens := range f.opens {
		return len(opens)
	}
	return 0
}

// TestStallBodyTinyLimit: a stall limit of a nanosecond fails reads (the
// read is resumed) but never crashes; the timer once fired before it was
// stored, and Close panicked on it (--read-stall 1ns, found by an
// independent tester).
func TestStallBodyTinyLimit(t *testing.T) {
	for range 1000 {
		r, w := io.Pipe()
		b := newStallBody(r, time.Nanosecond)
		go w.Write([]byte("x"))
		b.Read(make([]byte, 1))
		b.Close()
		w.Close()
	}
}

// TestDirFileChangedInPlace: a local file overwritten or truncated in place
// (the same inode) while it is read fails the next read as replaced; one
// replaced by a rename is read whole, from the inode opened. An in-place
// overwrite used to splice the two versions, exit 0 (found by an
// independent tester).
func TestDirFileChangedInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte(strings.Repeat("a", 100)), 0o644)
	for _, change := range []struct {
		name     string
		do       func()
		replaced bool
	}{
		{"overwritten", func() { os.WriteFile(path, []byte(strings.Repeat("b", 100)), 0o644); bumpTime(path) }, true},
		{"truncated", func() { os.Truncate(path, 50) }, true},
		{"renamed over", func() {
			os.WriteFile(path+".new", []byte(strings.Repeat("c", 100)), 0o644)
			os.Rename(path+".new", path)
		}, false},
	} {
		os.WriteFile(path, []byte(strings.Repeat("a", 100)), 0o644)
		rc, _, err := DirStore{Root: dir}.Open(context.Background(), "f", ReadAt{})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := rc.Read(buf); err != nil {
			t.Fatal(err)
		}
		change.do()
		rest, err := io.ReadAll(rc)
		rc.Close()
		if change.replaced && (!errors.Is(err, ErrObjectReplaced) || strings.Contains(string(rest), "b")) {
			t.Errorf("%s: read %q, %v; want ErrObjectReplaced and none of the new bytes", change.name, rest, err)
		}
		if !change.replaced && (err != nil || string(rest) != strings.Repeat("a", 90)) {
			t.Errorf("%s: read %q, %v; want the rest of the file opened", change.name, rest, err)
		}
	}
}

// bumpTime moves a file's modification time on, as a later write would on
// a file system with coarse timestamps.
func bumpTime(path string) {
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
}

// replacingStore serves its object's first cut bytes, then fails the read
// as the directory store does for a file changed in place.
type replacingStore struct {
	Store
	cut int
}

func (s replacingStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	rc, v, err := s.Store.Open(ctx, key, at)
	if err != nil {
		return nil, "", err
	}
	return &faultyBody{rc: rc, left: s.cut, fail: fmt.Errorf("%w: changed", ErrObjectReplaced), closed: make(chan struct{}), fired: func() {}}, v, nil
}

// TestReplayObjectReplacedMidRead: an object replaced while it is read
// fails naming --restart; the value cut off is not dead-lettered and
// nothing after it is read.
func TestReplayObjectReplacedMidRead(t *testing.T) {
	x := bigExport(1, 3000)
	var m memSink
	sum, err := replayInto(t, &m, replacingStore{Store: DirStore{Root: writeDir(t, x)}, cut: 100_000}, "", LayoutFirehose, Window{}, Options{})
	if !errors.Is(err, ErrObjectReplaced) && !strings.Contains(fmt.Sprint(err), "object replaced") || !strings.Contains(fmt.Sprint(err), "--restart") {
		t.Fatalf("err %v: want the object failed as replaced, naming --restart", err)
	}
	if sum.Failed != 1 || sum.Dead != 0 || sum.Events == 0 || sum.Events >= 3000 {
		t.Errorf("summary %+v: want the prefix delivered, no dead letter, the object failed", sum)
	}
}

// TestOpenFallsBackToListedVersion: a store whose answers name no version
// (an S3-compatible store without ETags on GET) is checked with the
// listing's, so resumed reads and reruns still ask for the same version.
func TestOpenFallsBackToListedVersion(t *testing.T) {
	const key = "public/2024/02/01/09/obj"
	x := exportSet{objects: map[string][]byte{key: []byte("0123456789")}}
	st := s3StoreWith(t, "no-etag", x, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0 {
				fake.ServeHTTP(noETag{w}, r)
				return
			}
			fake.ServeHTTP(w, r)
		})
	})
	var obj Object
	st.List(context.Background(), "public/", func(o Object) error { obj = o; return nil })
	if obj.Version == "" {
		t.Fatal("the listing names no ETag")
	}
	rr, err := openResuming(context.Background(), st, obj, "", time.Second, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if rr.version != obj.Version {
		t.Errorf("version %q, want the listing's %q", rr.version, obj.Version)
	}
}

// noETag drops the ETag header of a response.
type noETag struct{ http.ResponseWriter }

func (w noETag) WriteHeader(code int) {
	w.Header().Del("ETag")
	w.ResponseWriter.WriteHeader(code)
}

func (w noETag) Write(b []byte) (int, error) {
	w.Header().Del("ETag")
	return w.ResponseWriter.Write(b)
}

// TestReplayObjectGoneReported: an object partly delivered by an earlier
// run and deleted since fails the rerun (its remaining events cannot be
// replayed) instead of a clean finish with no word of it (found by an
// independent tester). A state without the object's version is read on
// with a warning.
func TestReplayObjectGoneReported(t *testing.T) {
	x := bigExport(2, 2000)
	root := writeDir(t, x)
	state := filepath.Join(t.TempDir(), "s.json")
	ctx, cancel := context.WithCancel(context.Background())
	j := dirJob(root, state, io.Discard)
	j.Concurrency, j.BatchSize = 2, 50
	n := 0
	m := memSink{hook: func(context.Context) error {
		if n++; n == 6 {
			cancel()
		}
		return nil
	}}
	if _, err := j.Run(ctx, &m); err == nil {
		t.Fatal("the interrupted run reported success")
	}
	b, _ := os.ReadFile(state)
	var d stateData
	json.Unmarshal(b, &d)
	var partial string
	for id, off := range d.InProgress {
		if off > 0 {
			partial = id
		}
	}
	if partial == "" {
		t.Fatalf("no object partly delivered after the interruption: %s", b)
	}
	// Drop the recorded versions, as an older eventrelay wrote the state.
	d.Versions = nil
	b, _ = json.Marshal(d)
	os.WriteFile(state, b, 0o600)
	var logs syncBuffer
	j = dirJob(root, state, &logs)
	if _, err := j.Run(context.Background(), &memSink{}); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if !strings.Contains(logs.String(), "the state records no version of this object") {
		t.Errorf("a state without versions read on without a warning:\n%s", logs.String())
	}
	// Partly delivered again, then the object is deleted.
	d.Completed, d.InProgress = map[string]ObjectStats{}, map[string]int64{partial: 1000}
	b, _ = json.Marshal(d)
	os.WriteFile(state, b, 0o600)
	os.Remove(partial)
	j = dirJob(root, state, io.Discard)
	sum, err := j.Run(context.Background(), &memSink{})
	if err == nil || !strings.Contains(err.Error(), "no longer listed") || sum.Failed != 1 {
		t.Errorf("rerun after the object was deleted: %v, summary %+v; want it reported, exit 1", err, sum)
	}
}

// TestDirVersionSeesRestoredTime: a file overwritten with the same size
// and its old modification time restored (touch -r) between runs is still
// another version: its change time moved (found by an independent tester).
func TestDirVersionSeesRestoredTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("aaaa"), 0o644)
	info, _ := os.Stat(path)
	rc, version, err := DirStore{Root: dir}.Open(context.Background(), "f", ReadAt{})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	time.Sleep(10 * time.Millisecond) // change times are nanoseconds, but let the clock move
	os.WriteFile(path, []byte("bbbb"), 0o644)
	os.Chtimes(path, info.ModTime(), info.ModTime())
	if _, _, err := (DirStore{Root: dir}).Open(context.Background(), "f", ReadAt{From: 2, Version: version}); !errors.Is(err, ErrObjectReplaced) {
		t.Errorf("same size, old time restored: %v, want ErrObjectReplaced", err)
	}
}

// listedAs lists every object with the given version, as a store whose
// listing names a newer ETag than the one recorded does.
type listedAs struct {
	Store
	version string
	opened  *int
}

func (l listedAs) List(ctx context.Context, prefix string, fn func(Object) error) error {
	return l.Store.List(ctx, prefix, func(o Object) error { o.Version = l.version; return fn(o) })
}

func (l listedAs) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	*l.opened++
	rc, _, err := l.Store.Open(ctx, key, ReadAt{From: at.From})
	return rc, "", err // answers name no version and honour none
}

// TestReplayListedVersionChanged: when the listing names another version
// than the one an earlier run recorded, the object fails as replaced
// without being read, even from a store that ignores If-Match and names
// no version in its answers (it was spliced, exit 0).
func TestReplayListedVersionChanged(t *testing.T) {
	x := bigExport(1, 500)
	opened := 0
	store := listedAs{Store: DirStore{Root: writeDir(t, x)}, version: `"new-etag"`, opened: &opened}
	_, objs, err := Plan(context.Background(), store, "", LayoutFirehose, Window{}, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, _ := LoadState(filepath.Join(t.TempDir(), "s.json"), []string{"x"}, Window{}, false)
	id := store.Name() + "/" + objs[0].Key
	state.Progress(id, 1000)
	state.SetVersion(id, `"old-etag"`)
	var m memSink
	sum, err := NewRunner(Options{}, &m, state, zerolog.Nop()).Run(context.Background(), []Source{{Store: store, Objects: objs, Format: envelope.FormatOneWelcome}})
	if !strings.Contains(fmt.Sprint(err), "object replaced") || sum.Failed != 1 || opened != 0 || len(m.ids) != 0 {
		t.Errorf("err %v, summary %+v, %d opens, %d events; want it failed as replaced, unread", err, sum, opened, len(m.ids))
	}
	if strings.Count(fmt.Sprint(err), "--restart") != 1 {
		t.Errorf("the hint is given %d times: %v", strings.Count(fmt.Sprint(err), "--restart"), err)
	}
}

// TestStallBodyCountsOnlyWaitsInRead: time between reads (the replay
// waiting for Kafka) is not a stall; only a read that waits is.
func TestStallBodyCountsOnlyWaitsInRead(t *testing.T) {
	b := newStallBody(io.NopCloser(strings.NewReader("abc")), 20*time.Millisecond)
	defer b.Close()
	buf := make([]byte, 1)
	for range 3 {
		if _, err := b.Read(buf); err != nil {
			t.Fatalf("a read with bytes ready failed after a pause between reads: %v", err)
		}
		time.Sleep(60 * time.Millisecond) // three times the limit, outside Read
	}
	r, w := io.Pipe()
	defer w.Close()
	silent := newStallBody(r, 20*time.Millisecond)
	if _, err := silent.Read(buf); !errors.Is(err, errReadStalled) {
		t.Errorf("a read that waits past the limit: %v, want errReadStalled", err)
	}
}
