package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/eventrelay/eventrelay/internal/testnet"
)

// The reliability suite drives the real binary against the local stack and
// counts, by event id, what reached Kafka against what was written. Each
// scenario logs a line
// "RELIABILITY|scenario|written|delivered|lost|duplicates|recovery|note"
// from which scripts/reliability.sh writes docs/RELIABILITY.md.
//
// EVENTRELAY_RELIABILITY selects the run:
//   - unset (make test): the kill -9 scenario at its smallest size and the
//     stalled-dependency scenarios; the others skip, naming make reliability.
//   - small (make reliability-small): every scenario at small sizes.
//   - full (make reliability): every scenario at the documented sizes.

func reliabilityMode() string { return os.Getenv("EVENTRELAY_RELIABILITY") }

func full() bool { return reliabilityMode() == "full" }

// size is a scenario's size: short in the default and small runs, long in
// the full one.
func size(short, long int) int {
	if full() {
		return long
	}
	return short
}

// reliabilityOnly skips a scenario in the default test run: it runs in
// make reliability (full size) and make reliability-small.
func reliabilityOnly(t *testing.T) {
	t.Helper()
	if reliabilityMode() == "" {
		t.Skip("fault-injection scenario: runs in make reliability (EVENTRELAY_RELIABILITY=full) and make reliability-small")
	}
}

type relEnv struct {
	st     *awstest.Stack
	kafka  *kafkatest.Cluster
	kc     *kinesis.Client
	bin    string
	stream string
	next   int
}

func newRelEnv(t *testing.T, shards int32) *relEnv {
	t.Helper()
	e := &relEnv{bin: consumerBinary(t), st: awstest.StartStack(t), stream: "rel"}
	e.kafka = kafkatest.Start(t, 1, 4, "events.onewelcome", "events.dlq")
	e.kc = createStream(t, e.st, e.stream, shards)
	return e
}

// createStream makes a stream with the assumed role's credentials and
// returns the client (signed requests, through the verifying proxy).
func createStream(t *testing.T, st *awstest.Stack, name string, shards int32) *kinesis.Client {
	t.Helper()
	cfg := assumedConfig(t, st)
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(st.KinesisURL) })
	if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	return kc
}

func assumedConfig(t *testing.T, st *awstest.Stack) aws.Config {
	t.Helper()
	cfg, _, err := assumerole.Load(context.Background(), assumerole.Config{Region: "us-east-1", Endpoints: assumerole.Endpoints{STS: st.STS.URL}},
		assumerole.Role{RoleARN: st.Role, ExternalID: secret.String(st.ExternalID)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// put writes n events in envelopes of 10, returning their ids.
func (e *relEnv) put(t *testing.T, n int) []string {
	t.Helper()
	ids, err := e.putE(n)
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return ids
}

// putE is put for other goroutines than the test's: it returns the error.
func (e *relEnv) putE(n int) ([]string, error) {
	var ids []string
	var entries []types.PutRecordsRequestEntry
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		out, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
		if err != nil {
			return err
		}
		if aws.ToInt32(out.FailedRecordCount) > 0 {
			return fmt.Errorf("%d records failed", aws.ToInt32(out.FailedRecordCount))
		}
		entries = entries[:0]
		return nil
	}
	for i := 0; i < n; i += 10 {
		var evs []string
		for j := i; j < min(i+10, n); j++ {
			id := fmt.Sprintf("rel-%07d", e.next)
			e.next++
			ids = append(ids, id)
			evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"%s","type":"T","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"2024-02-01T00:00:00Z"},"payload":{"n":%d}}`, id, j%97, j))
		}
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), PartitionKey: aws.String(strconv.Itoa(rand.IntN(1 << 30)))})
		if len(entries) == 200 {
			if err := flush(); err != nil {
				return ids, err
			}
		}
	}
	return ids, flush()
}

type proc struct {
	cmd  *exec.Cmd
	logs *syncBuf
	port int
	done chan struct{}
	rss  *rssSampler
}

// start runs `consumer stream` as worker id.
func (e *relEnv) start(t *testing.T, id string, extra ...string) *proc {
	t.Helper()
	p := &proc{logs: &syncBuf{}, port: testnet.FreePorts(t, 1)[0], done: make(chan struct{})}
	p.cmd = exec.Command(e.bin, "stream")
	p.cmd.Env = append(append(os.Environ(), e.st.Env(e.st.ExternalID)...),
		"EVENTRELAY_SOURCE_KINESIS_STREAM="+e.stream, "EVENTRELAY_SOURCE_KINESIS_APPLICATION=rel",
		"EVENTRELAY_SOURCE_KINESIS_WORKER_ID="+id, "EVENTRELAY_SOURCE_KINESIS_SHARD_SYNC_INTERVAL=300ms",
		"EVENTRELAY_SOURCE_KINESIS_FAILOVER_TIME=3s", "EVENTRELAY_SOURCE_KINESIS_MAX_RECORDS=100",
		"EVENTRELAY_SINK_KAFKA_BROKERS="+e.kafka.Addrs[0], "EVENTRELAY_SINK_KAFKA_RETRY_BACKOFF_MAX=1s",
		"EVENTRELAY_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(p.port), "EVENTRELAY_LOG_FORMAT=json")
	p.cmd.Env = append(p.cmd.Env, extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.rss = sampleRSS(p.cmd.Process.Pid)
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill9)
	return p
}

func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) metric(name string) float64 {
	_, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.port))
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

// rssMB is the worker's peak resident memory so far.
func (p *proc) rssMB() float64 { return float64(p.rss.peakKB.Load()) / 1024 }

// count reads the events topic until want distinct ids arrived (or timeout).
func (e *relEnv) count(t *testing.T, want int, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := kafkatest.Consume(t, e.kafka.Addrs, "events.onewelcome", 1<<30, 2*time.Second)
		counts := map[string]int{}
		for _, r := range recs {
			counts[r.Headers["event-id"]]++
		}
		if len(counts) >= want || time.Now().After(deadline) {
			return counts
		}
	}
}

// tally compares what was written with what Kafka holds.
func tally(ids []string, counts map[string]int) (delivered, lost, dups int) {
	for _, id := range ids {
		if counts[id] == 0 {
			lost++
		} else {
			delivered++
			dups += counts[id] - 1
		}
	}
	return
}

func report(t *testing.T, scenario string, written, delivered, lost, dups int, recovery time.Duration, note string) {
	t.Logf("RELIABILITY|%s|%d|%d|%d|%d|%s|%s", scenario, written, delivered, lost, dups, recovery.Round(100*time.Millisecond), note)
	if lost != 0 {
		t.Errorf("%s: %d events lost", scenario, lost)
	}
}

// TestReliabilityKill9 kills the worker with SIGKILL at random points while
// it drains the stream, restarting it each time.
func TestReliabilityKill9(t *testing.T) {
	e := newRelEnv(t, 4)
	events, kills := size(5000, 100000), size(3, 10)
	if reliabilityMode() == "" {
		events, kills = 2000, 2 // the default run's smoke of the scenario
	}
	ids := e.put(t, events)
	maxRSS := 0.0
	for k := range kills {
		p := e.start(t, "w")
		time.Sleep(time.Duration(1000+rand.IntN(2500)) * time.Millisecond)
		p.kill9()
		maxRSS = max(maxRSS, p.rssMB())
		t.Logf("kill %d: %d distinct events in Kafka so far", k+1, len(e.count(t, 0, 0)))
	}
	start := time.Now()
	p := e.start(t, "w")
	counts := e.count(t, len(ids), 5*time.Minute)
	delivered, lost, dups := tally(ids, counts)
	// Bound: per kill, at most the unacknowledged-or-uncheckpointed batches
	// in flight per shard (pipeline.DefaultInFlight of max_records 100
	// records x 10 events) are delivered again.
	bound := kills * 4 * pipeline.DefaultInFlight * 1000
	if dups > bound {
		t.Errorf("%d duplicates, above the bound of %d", dups, bound)
	}
	if maxRSS > 512 {
		t.Errorf("peak RSS %.0f MB: memory is not bounded by the batches in flight", maxRSS)
	}
	report(t, "kill -9 of the worker, restarted", len(ids), delivered, lost, dups, time.Since(start),
		fmt.Sprintf("%d kills; duplicates bounded by kills x shards x batches in flight x max_records x events/record = %d; peak RSS %.0f MB", kills, bound, maxRSS))
	p.kill9()
}

// TestReliabilityFailover: two workers share 8 shards; one is killed and
// the other takes over its leases within the failover time.
func TestReliabilityFailover(t *testing.T) {
	reliabilityOnly(t)
	e := newRelEnv(t, 8)
	ids := e.put(t, size(2000, 20000))
	a := e.start(t, "worker-a", "EVENTRELAY_SOURCE_KINESIS_MAX_LEASES_FOR_WORKER=4")
	b := e.start(t, "worker-b")
	testwait.Until(t, 60*time.Second, "both workers to hold leases", func() bool {
		la, lb := a.metric("eventrelay_kinesis_leases_held"), b.metric("eventrelay_kinesis_leases_held")
		return la >= 1 && lb >= 1 && la+lb == 8 // worker-a holds at most 4, so both have some
	}, a.logs.String)
	a.kill9()
	killed := time.Now()
	testwait.Until(t, 60*time.Second, "worker b to take all 8 leases", func() bool { return b.metric("eventrelay_kinesis_leases_held") == 8 }, b.logs.String)
	recovery := time.Since(killed)
	more := e.put(t, size(1000, 10000))
	ids = append(ids, more...)
	counts := e.count(t, len(ids), 3*time.Minute)
	delivered, lost, dups := tally(ids, counts)
	report(t, "2 workers on 8 shards, one killed", len(ids), delivered, lost, dups, recovery, "recovery = time until the survivor holds all 8 leases (failover_time 3s)")
}

// TestReliabilityKafkaOutage stops the broker mid-stream: deliveries block
// and retry, checkpoints do not advance, everything arrives afterwards.
func TestReliabilityKafkaOutage(t *testing.T) {
	reliabilityOnly(t)
	e := newRelEnv(t, 2)
	ids := e.put(t, size(3000, 30000))
	p := e.start(t, "w")
	testwait.Until(t, 60*time.Second, "events from the worker", func() bool { return p.metric("eventrelay_kinesis_events_total") > 0 }, p.logs.String)
	e.kafka.Stop()
	down := time.Duration(size(5, 30)) * time.Second
	time.Sleep(time.Second)
	cp1 := p.metric("eventrelay_kinesis_checkpoints_total")
	more := e.put(t, size(1000, 10000))
	time.Sleep(down - time.Second)
	cp2 := p.metric("eventrelay_kinesis_checkpoints_total")
	if cp2 != cp1 {
		t.Errorf("checkpoints advanced from %v to %v while Kafka was down", cp1, cp2)
	}
	e.kafka.Restart(t)
	back := time.Now()
	ids = append(ids, more...)
	counts := e.count(t, len(ids), 3*time.Minute)
	delivered, lost, dups := tally(ids, counts)
	report(t, fmt.Sprintf("Kafka down for %s mid-stream", down), len(ids), delivered, lost, dups, time.Since(back),
		fmt.Sprintf("no checkpoint while down (%v before, %v after); recovery = broker back to all delivered", cp1, cp2))
}

// TestReliabilityThrottling makes the Kinesis proxy answer a share of
// GetRecords with ProvisionedThroughputExceeded and some with
// ExpiredIterator: retried, nothing skipped.
func TestReliabilityThrottling(t *testing.T) {
	reliabilityOnly(t)
	e := newRelEnv(t, 2)
	ids := e.put(t, size(3000, 30000))
	var calls atomic.Int64
	e.st.KinesisProxy.SetFault(func(target string) (int, string, bool) {
		if !strings.HasSuffix(target, ".GetRecords") {
			return 0, "", false
		}
		switch n := calls.Add(1); {
		case n%3 == 0:
			return 400, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"}`, true
		case n%17 == 0:
			return 400, `{"__type":"ExpiredIteratorException","message":"Iterator expired"}`, true
		}
		return 0, "", false
	})
	start := time.Now()
	p := e.start(t, "w")
	counts := e.count(t, len(ids), 3*time.Minute)
	e.st.KinesisProxy.SetFault(nil)
	delivered, lost, dups := tally(ids, counts)
	report(t, "GetRecords throttled (1 in 3) and iterators expiring (1 in 17)", len(ids), delivered, lost, dups, time.Since(start), "recovery = time to deliver everything under faults")
	p.kill9()
}

// TestReliabilityHostileRecords: random bytes, deep nesting, huge strings,
// invalid UTF-8, wrong types and 1 MiB records each land in the DLQ with a
// reason; the worker does not crash and the good events all arrive.
func TestReliabilityHostileRecords(t *testing.T) {
	reliabilityOnly(t)
	e := newRelEnv(t, 2)
	hostile := size(1000, 10000)
	small := []func() []byte{
		func() []byte {
			b := make([]byte, 1+rand.IntN(2000))
			for j := range b {
				b[j] = byte(rand.IntN(256))
			}
			b[0] = '%' // never valid JSON
			return b
		},
		func() []byte { return []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000)) },
		func() []byte {
			return []byte("{\"events\":[{\"metadata\":{\"eventId\":\"a\xff\xfe\",\"type\":\"T\",\"occurredTime\":\"2024-02-01T00:00:00Z\"}}]}")
		},
		func() []byte {
			return []byte(`{"events":[{"metadata":{"eventId":42,"type":["T"],"occurredTime":true}}]}`)
		},
		func() []byte {
			return []byte(`{"events":[{"metadata":{"eventId":"x","type":"T","occurredTime":"` + strings.Repeat("9", 5000) + `"}}]}`)
		},
	}
	// Huge records are few: the emulator moves about 1.6 MB/s.
	huge := []func() []byte{
		func() []byte {
			return []byte(`{"events":[{"metadata":{"eventId":"` + strings.Repeat("x", 900_000) + `"}}]}`)
		},
		func() []byte { return []byte(`{"events":"` + strings.Repeat("y", 1<<20-20) + `"}`) },
	}
	nHuge := size(3, 20)
	kinds := func(i int) []byte {
		if i < nHuge*len(huge) {
			return huge[i%len(huge)]()
		}
		return small[i%len(small)]()
	}
	var entries []types.PutRecordsRequestEntry
	var batchBytes int
	for i := range hostile {
		data := kinds(i)
		if batchBytes+len(data) > 4<<20 || len(entries) == 100 {
			if _, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries}); err != nil {
				t.Fatal(err)
			}
			entries, batchBytes = entries[:0], 0
		}
		entries = append(entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(strconv.Itoa(i))})
		batchBytes += len(data)
	}
	if _, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries}); err != nil {
		t.Fatal(err)
	}
	ids := e.put(t, 500)
	start := time.Now()
	p := e.start(t, "w")
	counts := e.count(t, len(ids), 3*time.Minute)
	dlq := kafkatest.Consume(t, e.kafka.Addrs, "events.dlq", hostile, 3*time.Minute)
	withReason := 0
	for _, r := range dlq {
		if r.Headers["dlq-reason"] != "" && r.Headers["dlq-kind"] != "" && strings.HasPrefix(r.Headers["source-position"], "shardId-") {
			withReason++
		}
	}
	if withReason < hostile {
		t.Errorf("%d of %d hostile records in the DLQ with kind, reason and position", withReason, hostile)
	}
	select {
	case <-p.done:
		t.Fatalf("the worker exited on hostile input:\n%s", p.logs.String())
	default:
	}
	delivered, lost, dups := tally(ids, counts)
	p.kill9()
	if p.rssMB() > 512 {
		t.Errorf("peak RSS %.0f MB with 1 MiB records", p.rssMB())
	}
	report(t, fmt.Sprintf("%d hostile records (%d of ~1 MiB) among good ones", hostile, nHuge*len(huge)), len(ids), delivered, lost, dups, time.Since(start),
		fmt.Sprintf("%d dead letters with kind, reason and shard/sequence; worker alive; peak RSS %.0f MB", withReason, p.rssMB()))
}

// TestReliabilityCredentials: the assumed role's credentials expire every
// few seconds mid-run, then AssumeRole starts failing (external ID
// rotated): the worker turns not ready and keeps running, and recovers
// once STS accepts again. Nothing is lost.
func TestReliabilityCredentials(t *testing.T) {
	reliabilityOnly(t)
	e := newRelEnv(t, 2)
	e.st.STS.SetLifetime(4 * time.Second)
	ids := e.put(t, size(2000, 20000))
	p := e.start(t, "w", "EVENTRELAY_AWS_STREAM_ROLE_REFRESH_BEFORE=1s")
	testwait.Until(t, 60*time.Second, "/readyz 200", func() bool { code, _ := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port)); return code == 200 }, p.logs.String)
	time.Sleep(6 * time.Second) // credentials expired and were refreshed at least once
	e.st.STS.SetExternalID("rotated")
	testwait.Until(t, 90*time.Second, "credentials reported unhealthy", func() bool { return p.metric(`eventrelay_aws_credentials_healthy{credentials="stream_role"}`) == 0 }, p.logs.String)
	if code, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port)); code != 503 || !strings.Contains(body, "stream credentials") {
		t.Errorf("readyz while AssumeRole fails: %d %q", code, body)
	}
	e.st.STS.SetExternalID(e.st.ExternalID)
	failing := time.Now()
	testwait.Until(t, 90*time.Second, "/readyz 200 again", func() bool { code, _ := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port)); return code == 200 }, p.logs.String)
	recovery := time.Since(failing)
	more := e.put(t, size(1000, 10000))
	ids = append(ids, more...)
	counts := e.count(t, len(ids), 3*time.Minute)
	delivered, lost, dups := tally(ids, counts)
	logs := p.logs.String()
	for _, s := range []string{e.st.ExternalID, e.st.BaseSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("logs leak %q", s)
		}
	}
	if _, m := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.port)); strings.Contains(m, e.st.ExternalID) || strings.Contains(m, e.st.BaseSecret) {
		t.Error("metrics leak a secret")
	}
	report(t, "credentials expiring every 4s, then AssumeRole failing", len(ids), delivered, lost, dups, recovery, "recovery = STS accepting again to ready; no secret in logs or metrics")
	p.kill9()
}

// TestReliabilityReplayKill9 kills `consumer replay` with SIGKILL mid-run
// and reruns the same command: nothing is lost, and duplicates come only
// from the objects in flight (at most one unrecorded batch each).
func TestReliabilityReplayKill9(t *testing.T) {
	bin := consumerBinary(t)
	kc := kafkatest.Start(t, 1, 4, "events.fulfillmenttools", "events.dlq")
	dir := t.TempDir()
	objects, per := size(20, 60), 1000
	var ids []string
	for o := range objects {
		day := time.Date(2024, 2, 1+o%3, 0, 0, 0, 0, time.UTC)
		var b strings.Builder
		for i := range per {
			id := fmt.Sprintf("rk-%03d-%04d", o, i)
			ids = append(ids, id)
			fmt.Fprintf(&b, `{"id":"%s","eventName":"order-created_event-v1","payload":{"id":"o%d"},"created":"%s"}`+"\n", id, i%13, day.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		}
		p := filepath.Join(dir, day.Format("2006-01-02"), fmt.Sprintf("%012d.json", o))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	args := []string{"replay", dir, "--brokers", kc.Addrs[0], "--http-addr", "off", "--state", state, "--tenant", "acme", "--rate", "4000", "--concurrency", "4"}
	first := exec.Command(bin, args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(1500+rand.IntN(1000)) * time.Millisecond)
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	mid := len(kafkatest.Consume(t, kc.Addrs, "events.fulfillmenttools", 1<<30, 2*time.Second))
	start := time.Now()
	args[len(args)-3] = "0" // no rate limit for the rerun
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	recs := kafkatest.Consume(t, kc.Addrs, "events.fulfillmenttools", len(ids), 60*time.Second)
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Headers["event-id"]]++
	}
	delivered, lost, dups := tally(ids, counts)
	bound := 4 * 1000 // concurrency x batch size
	if dups > bound {
		t.Errorf("%d duplicates, above the bound of %d", dups, bound)
	}
	report(t, "kill -9 of a replay mid-object, rerun", len(ids), delivered, lost, dups, time.Since(start),
		fmt.Sprintf("%d events had reached Kafka at the kill; duplicates bounded by concurrency x batch = %d", mid, bound))
}
