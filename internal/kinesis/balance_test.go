package kinesis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// fakeLeases is the library's checkpointer as the wrapper sees it.
type fakeLeases struct {
	checkpoint.Checkpointer
	mu       sync.Mutex
	got      []string
	removed  []string
	leaseErr error
}

func (f *fakeLeases) GetLease(s *par.ShardStatus, owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, s.ID)
	return f.leaseErr
}

func (f *fakeLeases) CheckpointSequence(*par.ShardStatus) error { return nil }

func (f *fakeLeases) RemoveLeaseOwner(shard string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, shard)
	return nil
}

// TestLeasesWrapper: the checkpointer wrapper refuses a new lease above
// the share with the library's "lease not acquired" (so its loop moves
// on), takes one below it, renews held leases, and fails the renewal of a
// lease once its processor delivered and checkpointed it; the library's
// release then comes handOverDelay after the last checkpoint at the
// earliest and counts as a shed move.
func TestLeasesWrapper(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Stream{cfg: Config{Stream: "s", WorkerID: "me"}.withDefaults(), log: zerolog.Nop(), m: newMetrics(reg)}
	b := newBalancer(s, reg)
	inner := &fakeLeases{}
	l := b.wrap(inner)
	shard := func(id string) *par.ShardStatus { return &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}} }

	// No reading of the table yet: take as the library would.
	if err := l.GetLease(shard("s1"), "me"); err != nil {
		t.Fatalf("without a view: %v", err)
	}
	// 4 shards, two live workers, "me" holds 1 of them: a share of 2.
	b.v = &view{open: 4, free: 1, held: map[string]int{"me": 1, "other": 2}, caps: map[string]int{}}
	if err := l.GetLease(shard("s2"), "me"); err != nil {
		t.Fatalf("below the share: %v", err)
	}
	err := l.GetLease(shard("s3"), "me")
	if !errors.As(err, &checkpoint.ErrLeaseNotAcquired{}) || !strings.Contains(err.Error(), "share of 2..2") {
		t.Fatalf("at the share: %v, want lease not acquired naming the share", err)
	}
	if got := testutil.ToFloat64(b.m.moves.WithLabelValues("taken")); got != 2 {
		t.Errorf("taken = %v, want 2", got)
	}
	// Renewals pass through, also while a hand-over waits for the processor.
	b.shed["s2"] = &shedding{state: shedRequested, since: time.Now()}
	if err := l.GetLease(shard("s2"), "me"); err != nil {
		t.Fatalf("renewal: %v", err)
	}
	if !b.beginRelease("s2") || b.beginRelease("s2") || b.beginRelease("s1") {
		t.Fatal("beginRelease: want true once for the shard being given up, false otherwise")
	}
	if err := l.GetLease(shard("s2"), "me"); err != nil {
		t.Fatalf("renewal while flushing: %v", err)
	}
	if err := l.CheckpointSequence(shard("s2")); err != nil {
		t.Fatal(err)
	}
	checkpointed := time.Now()
	b.flushed("s2")
	err = l.GetLease(shard("s2"), "me")
	if !errors.As(err, &checkpoint.ErrLeaseNotAcquired{}) || !strings.Contains(err.Error(), releasedMsg) {
		t.Fatalf("renewal after the flush: %v, want the release error", err)
	}
	if err := l.RemoveLeaseOwner("s2"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(checkpointed); d < handOverDelay {
		t.Errorf("released %s after the last checkpoint, want at least %s", d, handOverDelay)
	}
	if got := testutil.ToFloat64(b.m.moves.WithLabelValues("shed")); got != 1 {
		t.Errorf("shed = %v, want 1", got)
	}
	if b.held["s2"] || b.shed["s2"] != nil || !b.held["s1"] {
		t.Errorf("after the release: held %v, shedding %v", b.held, b.shed)
	}
	// A release that was not a hand-over (graceful stop) is no shed move.
	if err := l.RemoveLeaseOwner("s1"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(b.m.moves.WithLabelValues("shed")); got != 1 {
		t.Errorf("shed = %v after a plain release, want 1", got)
	}
	if want := []string{"s1", "s2", "s2", "s2"}; !slices.Equal(inner.got, want) {
		t.Errorf("library GetLease calls %v, want %v (refused and released ones never reach it)", inner.got, want)
	}
}

// TestKCLLoggerDemotesReleases: the library logs the failed renewal that
// ends a handed-over shard's consumer as an error; it is planned, so it is
// logged at debug. Other errors stay errors.
func TestKCLLoggerDemotesReleases(t *testing.T) {
	var out strings.Builder
	k := kclLogger{zerolog.New(&out).Level(zerolog.InfoLevel)}
	k.Errorf("Error in getRecords: %+v", errReleased)
	k.Errorf("Error in getRecords: %v", errors.New("AccessDenied"))
	if strings.Contains(out.String(), releasedMsg) || !strings.Contains(out.String(), `"level":"error","message":"Error in getRecords: AccessDenied"`) {
		t.Errorf("log:\n%s", out.String())
	}
}

// TestRouteLibraryLogs: the KCL's direct logrus lines come out through the
// configured logger, a renewal failed by a hand-over at debug.
func TestRouteLibraryLogs(t *testing.T) {
	var out strings.Builder
	RouteLibraryLogs(zerolog.New(&out).Level(zerolog.DebugLevel))
	defer RouteLibraryLogs(zerolog.Nop())
	logrus.Errorf("Error in refreshing lease on shard: s1 for worker: w. Error: %+v", errReleased)
	logrus.Errorf("Error in refreshing lease on shard: s2 for worker: w. Error: %v", errors.New("throttled"))
	want := `{"level":"debug","message":"Error in refreshing lease on shard: s1 for worker: w. Error: ` + releasedMsg + `: lease not acquired: "}
{"level":"error","message":"Error in refreshing lease on shard: s2 for worker: w. Error: throttled"}
`
	if out.String() != want {
		t.Errorf("routed:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestBalanceLeasesConfig: on by default, off by default with lease
// stealing, and both on is an error naming the field.
func TestBalanceLeasesConfig(t *testing.T) {
	on, off := true, false
	if c := (Config{Stream: "s"}).WithDefaults(); !*c.BalanceLeases {
		t.Error("balance_leases is off by default")
	}
	if c := (Config{Stream: "s", LeaseStealing: true}).WithDefaults(); *c.BalanceLeases {
		t.Error("balance_leases is on by default with lease_stealing")
	}
	if err := (Config{Stream: "s", LeaseStealing: true}).Validate(); err != nil {
		t.Errorf("lease_stealing alone: %v", err)
	}
	if err := (Config{Stream: "s", LeaseStealing: true, BalanceLeases: &off}).Validate(); err != nil {
		t.Errorf("lease_stealing with balance_leases off: %v", err)
	}
	err := (Config{Stream: "s", LeaseStealing: true, BalanceLeases: &on}).Validate()
	if err == nil || !strings.Contains(err.Error(), "source.kinesis.balance_leases: cannot be combined with lease_stealing") {
		t.Errorf("both on: %v", err)
	}
}

// TestStreamWorkersEvenOut runs the balancer in-process (so under -race
// too): three workers on 6 shards started one after another even out to
// 2/2/2, each hand-over delivered and checkpointed first (nothing read
// twice), and then nothing moves.
func TestStreamWorkersEvenOut(t *testing.T) {
	e := newEnv(t, 6)
	p := newProducer()
	p.put(t, e.kc, 300, 5, 40)
	var ws []*Stream
	var stops []func()
	held := func() string {
		var out []string
		for _, w := range ws {
			out = append(out, fmt.Sprint(w.LeasesHeld()))
		}
		return strings.Join(out, "/")
	}
	for i, want := range []string{"6", "3/3", "2/2/2"} {
		w, stop := e.worker(t, workerName(i), nil)
		ws, stops = append(ws, w), append(stops, stop)
		testwait.Until(t, 60*time.Second, "leases "+want, func() bool { return held() == want }, held)
		p.put(t, e.kc, 100, 5, 40)
	}
	moves := func() float64 {
		n := 0.0
		for _, w := range ws {
			n += testutil.ToFloat64(w.bal.m.moves.WithLabelValues("taken")) + testutil.ToFloat64(w.bal.m.moves.WithLabelValues("shed"))
		}
		return n
	}
	before := moves()
	counts := kafkaCounts(t, e, len(p.ids))
	if after := moves(); after != before || held() != "2/2/2" {
		t.Errorf("after convergence: %v lease moves, holdings %s", after-before, held())
	}
	for _, stop := range stops {
		stop()
	}
	if dups := requireDelivered(t, p.ids, counts, "while the leases evened out"); dups != 0 {
		t.Errorf("%d events delivered twice; every hand-over was graceful", dups)
	}
}
