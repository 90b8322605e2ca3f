package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/eventrelay/eventrelay/internal/testwait"
)

// The lease-balancing scenarios run several `consumer stream` processes on
// one 12-shard stream and read who holds which shard from the lease table
// itself (not from the workers' metrics): a lease is held when its row
// names an owner and its LeaseTimeout lies ahead. A "move" is a shard
// taken by a worker other than the one that held it before; a "change" is
// any change of a row's owner, releases included.

const balanceShards = 12

// balanceEnv is the stream worker environment with short lease intervals,
// so a scenario converges in seconds: leases are taken every ~300ms and
// expire after 3s (reliability_test.go's defaults).
func balanceEnv(t *testing.T) (*relEnv, *leaseWatch) {
	t.Helper()
	e := newRelEnv(t, balanceShards)
	ddb := dynamodb.NewFromConfig(assumedConfig(t, e.st), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.st.DynamoDBURL) })
	return e, watchLeases(t, ddb, "rel")
}

// leaseWatch polls the lease table every 100ms and keeps the owners, the
// owner changes and the moves it saw.
type leaseWatch struct {
	mu      sync.Mutex
	owner   map[string]string // shard -> owner of an unexpired lease
	last    map[string]string // shard -> last non-empty owner
	changes int
	moves   int
	polls   int
	err     error
}

func watchLeases(t *testing.T, ddb *dynamodb.Client, table string) *leaseWatch {
	t.Helper()
	w := &leaseWatch{owner: map[string]string{}, last: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll(ctx, ddb, table)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *leaseWatch) poll(ctx context.Context, ddb *dynamodb.Client, table string) {
	now := map[string]string{}
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if ctx.Err() == nil && !strings.Contains(err.Error(), "ResourceNotFound") {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
			return
		}
		for _, item := range page.Items {
			id := str(item["ShardID"])
			if !strings.HasPrefix(id, "shardId-") {
				continue // not a shard's lease
			}
			owner, until := str(item["AssignedTo"]), str(item["LeaseTimeout"])
			if ts, err := time.Parse(time.RFC3339Nano, until); owner != "" && err == nil && ts.After(time.Now()) {
				now[id] = owner
			}
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	shards := map[string]bool{}
	for s := range now {
		shards[s] = true
	}
	for s := range w.owner {
		shards[s] = true
	}
	for s := range shards {
		if now[s] == w.owner[s] {
			continue
		}
		w.changes++
		if now[s] != "" {
			if prev := w.last[s]; prev != "" && prev != now[s] {
				w.moves++
			}
			w.last[s] = now[s]
		}
	}
	w.owner = now
}

func str(v ddbtypes.AttributeValue) string {
	if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// held is the number of shards each owner holds.
func (w *leaseWatch) held() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := map[string]int{}
	for _, o := range w.owner {
		n[o]++
	}
	return n
}

func (w *leaseWatch) counters() (changes, moves int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changes, w.moves
}

// waitPolls waits until the watch polled the table n more times, so what
// it reports is at least that fresh.
func (w *leaseWatch) waitPolls(t *testing.T, n int) {
	t.Helper()
	w.mu.Lock()
	want := w.polls + n
	w.mu.Unlock()
	testwait.Until(t, 10*time.Second, "lease table polls", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.polls >= want })
}

// spread formats the holdings of workers, e.g. "4/4/4".
func (w *leaseWatch) spread(workers []string) string {
	held := w.held()
	var parts []string
	for _, id := range workers {
		parts = append(parts, fmt.Sprint(held[id]))
	}
	return strings.Join(parts, "/")
}

// even reports whether exactly workers hold every shard, each at least
// one and no two differing by more than one.
func (w *leaseWatch) even(workers []string) bool {
	held := w.held()
	total, lo, hi := 0, balanceShards, 0
	for owner, n := range held {
		if !slices.Contains(workers, owner) {
			return false
		}
		total += n
	}
	for _, id := range workers {
		lo, hi = min(lo, held[id]), max(hi, held[id])
	}
	return total == balanceShards && lo >= 1 && hi-lo <= 1
}

// mark is a point a convergence is measured from.
type mark struct {
	at    time.Time
	moves int
}

func (w *leaseWatch) mark() mark {
	_, moves := w.counters()
	return mark{time.Now(), moves}
}

// converge waits until workers hold an even spread and returns how long
// that took from m and the moves seen since m.
func (w *leaseWatch) converge(t *testing.T, workers []string, m mark, bound time.Duration, procs ...*proc) (took time.Duration, moves int) {
	t.Helper()
	testwait.Until(t, bound, "an even spread over "+strings.Join(workers, ", "), func() bool { return w.even(workers) }, func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "holdings: %v (err %v)\n", w.held(), w.err)
		for _, p := range procs {
			b.WriteString(tail(p.logs.String(), 30))
		}
		return b.String()
	})
	took = time.Since(m.at)
	_, after := w.counters()
	return took, after - m.moves
}

// quiet watches an even spread for d and returns the owner changes seen
// in the table and the moves the workers counted themselves.
func (w *leaseWatch) quiet(t *testing.T, d time.Duration, procs []*proc) (changes int, counted float64) {
	t.Helper()
	taken := func() float64 {
		sum := 0.0
		for _, p := range procs {
			sum += p.metric(`eventrelay_kinesis_lease_moves_total{direction="taken"}`) + p.metric(`eventrelay_kinesis_lease_moves_total{direction="shed"}`)
		}
		return sum
	}
	c0, _ := w.counters()
	m0 := taken()
	deadline := time.Now().Add(d)
	testwait.Until(t, d+10*time.Second, "the quiet window to pass", func() bool { return time.Now().After(deadline) })
	w.waitPolls(t, 2)
	c1, _ := w.counters()
	return c1 - c0, taken() - m0
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// term stops the worker with SIGTERM (a graceful drain) and waits for it.
func (p *proc) term(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit within 60s of SIGTERM\n%s", tail(p.logs.String(), 40))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM\n%s", code, tail(p.logs.String(), 40))
	}
}

func (p *proc) ready() bool {
	code, _ := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port))
	return code == 200
}

// writer puts events in the background until stopped, returning their ids.
type writer struct {
	stop chan struct{}
	done chan []string
}

func (e *relEnv) write(t *testing.T, every time.Duration, n int) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan []string, 1)}
	go func() {
		var ids []string
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				w.done <- ids
				return
			case <-tick.C:
			}
			more, err := e.putE(n)
			if err != nil {
				t.Errorf("writing events: %v", err)
				w.done <- ids
				return
			}
			ids = append(ids, more...)
		}
	}()
	return w
}

func (w *writer) finish() []string {
	close(w.stop)
	return <-w.done
}

// deliveredOnce counts what reached Kafka against ids and fails on a loss
// or a duplicate: every move in these scenarios is graceful.
func (e *relEnv) deliveredOnce(t *testing.T, ids []string) (delivered, lost, dups int) {
	t.Helper()
	counts := e.count(t, len(ids), 2*time.Minute)
	delivered, lost, dups = tally(ids, counts)
	if dups != 0 {
		t.Errorf("%d events delivered more than once; every lease moved gracefully", dups)
	}
	return
}

func names(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// quietFor is the window after convergence in which no lease may move.
func quietFor() time.Duration { return time.Duration(size(5, 30)) * time.Second }

// TestReliabilityLeaseBalanceStaggered starts three workers on 12 shards
// one after another: the first takes all 12, the second joins (6/6), the
// third joins (4/4/4). Without balancing the late workers get nothing
// (12/0/0). After convergence no lease moves for the quiet window.
func TestReliabilityLeaseBalanceStaggered(t *testing.T) {
	e, leases := balanceEnv(t)
	ids := e.put(t, size(600, 12000))
	w := e.write(t, 100*time.Millisecond, size(10, 50))
	ws := names("w", 3)
	procs := []*proc{e.start(t, ws[0])}
	testwait.Until(t, 60*time.Second, "w1 to hold all 12 leases", func() bool { return leases.held()["w1"] == balanceShards }, procs[0].logs.String)
	_, movesBefore := leases.counters()

	m := leases.mark()
	procs = append(procs, e.start(t, ws[1]))
	took2, moves2 := leases.converge(t, ws[:2], m, 30*time.Second, procs...)
	t.Logf("w2 joined: %s after %s, %d moves", leases.spread(ws[:2]), took2.Round(100*time.Millisecond), moves2)

	m = leases.mark()
	procs = append(procs, e.start(t, ws[2]))
	took3, moves3 := leases.converge(t, ws, m, 30*time.Second, procs...)
	t.Logf("w3 joined: %s after %s, %d moves", leases.spread(ws), took3.Round(100*time.Millisecond), moves3)

	changes, counted := leases.quiet(t, quietFor(), procs)
	if changes != 0 || counted != 0 {
		t.Errorf("after convergence: %d lease owner changes in the table, %v moves counted by the workers; want none", changes, counted)
	}
	ids = append(ids, w.finish()...)
	for _, p := range procs {
		if !p.ready() {
			t.Errorf("a worker holding %s leases is not ready", leases.spread(ws))
		}
	}
	delivered, lost, dups := e.deliveredOnce(t, ids)
	if movesBefore != 0 {
		t.Errorf("%d moves while w1 alone took the leases", movesBefore)
	}
	report(t, "3 workers on 12 shards started one after another", len(ids), delivered, lost, dups, took3,
		fmt.Sprintf("convergence = 3rd worker started to 4/4/4 (2nd: 6/6 after %s); lease moves %d + %d, then %d in %s",
			took2.Round(100*time.Millisecond), moves2, moves3, changes, quietFor()))
}

// TestReliabilityLeaseRollingRestart replaces three balanced workers one at
// a time (SIGTERM, then a new worker, which must hold leases and be ready
// before the next) while events are written: nothing is lost and nothing
// delivered twice.
func TestReliabilityLeaseRollingRestart(t *testing.T) {
	reliabilityOnly(t)
	e, leases := balanceEnv(t)
	ids := e.put(t, size(600, 12000))
	ws := names("w", 3)
	procs := map[string]*proc{}
	start := leases.mark()
	for _, id := range ws {
		procs[id] = e.start(t, id)
	}
	all := func() []*proc {
		var out []*proc
		for _, p := range procs {
			out = append(out, p)
		}
		return out
	}
	took, _ := leases.converge(t, ws, start, 60*time.Second, all()...)
	t.Logf("3 workers started together: %s after %s", leases.spread(ws), took.Round(100*time.Millisecond))
	w := e.write(t, 100*time.Millisecond, size(10, 50))
	var steps []string
	var worst time.Duration
	totalMoves := 0
	for i, old := range slices.Clone(ws) {
		repl := old + "b"
		begin := leases.mark()
		procs[old].term(t)
		delete(procs, old)
		procs[repl] = e.start(t, repl)
		ws[i] = repl
		testwait.Until(t, 60*time.Second, repl+" to be ready", procs[repl].ready, procs[repl].logs.String)
		took, moves := leases.converge(t, ws, begin, 60*time.Second, all()...)
		worst = max(worst, took)
		totalMoves += moves
		steps = append(steps, fmt.Sprintf("%s->%s %s (%d moves)", old, repl, took.Round(100*time.Millisecond), moves))
	}
	changes, counted := leases.quiet(t, quietFor(), all())
	if changes != 0 || counted != 0 {
		t.Errorf("after the rolling restart: %d lease owner changes, %v moves counted by the workers; want none", changes, counted)
	}
	ids = append(ids, w.finish()...)
	delivered, lost, dups := e.deliveredOnce(t, ids)
	report(t, "rolling restart of 3 workers on 12 shards (SIGTERM, one at a time)", len(ids), delivered, lost, dups, worst,
		fmt.Sprintf("events written throughout; convergence = SIGTERM to 4/4/4 again, worst step; %s; %d in %s after", strings.Join(steps, ", "), changes, quietFor()))
}

// TestReliabilityLeaseScaling scales 3 -> 2 -> 4 workers: each time the
// spread evens out (max - min <= 1) and then stays.
func TestReliabilityLeaseScaling(t *testing.T) {
	reliabilityOnly(t)
	e, leases := balanceEnv(t)
	ids := e.put(t, size(600, 12000))
	w := e.write(t, 200*time.Millisecond, size(10, 50))
	procs := map[string]*proc{}
	all := func() []*proc {
		var out []*proc
		for _, p := range procs {
			out = append(out, p)
		}
		return out
	}
	var notes []string
	var worst time.Duration
	step := func(ws []string, begin mark, what string) {
		took, moves := leases.converge(t, ws, begin, 60*time.Second, all()...)
		changes, counted := leases.quiet(t, quietFor(), all())
		if changes != 0 || counted != 0 {
			t.Errorf("%s: %d lease owner changes, %v moves counted after convergence; want none", what, changes, counted)
		}
		worst = max(worst, took)
		notes = append(notes, fmt.Sprintf("%s: %s after %s, %d moves, then %d", what, leases.spread(ws), took.Round(100*time.Millisecond), moves, changes))
	}
	begin := leases.mark()
	for _, id := range names("w", 3) {
		procs[id] = e.start(t, id)
	}
	step(names("w", 3), begin, "3 started")
	begin = leases.mark()
	procs["w3"].term(t)
	delete(procs, "w3")
	step(names("w", 2), begin, "3->2")
	begin = leases.mark()
	for _, id := range []string{"w5", "w6"} {
		procs[id] = e.start(t, id)
	}
	step([]string{"w1", "w2", "w5", "w6"}, begin, "2->4")
	ids = append(ids, w.finish()...)
	delivered, lost, dups := e.deliveredOnce(t, ids)
	report(t, "scaling 3 -> 2 -> 4 workers on 12 shards", len(ids), delivered, lost, dups, worst,
		"convergence = change to an even spread, worst step; "+strings.Join(notes, "; ")+fmt.Sprintf(" (no moves in %s after each)", quietFor()))
}
