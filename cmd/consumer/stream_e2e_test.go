package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/testnet"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package -> binary
)

// goBinary builds the package pkg (relative to this one) once per test
// run and returns the binary's path.
func goBinary(t testing.TB, pkg, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "eventrelay-bin-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = path
	return path
}

// consumerBinary builds the real binary once per test run.
func consumerBinary(t testing.TB) string { return goBinary(t, ".", "consumer") }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStreamBinaryEndToEnd runs the real `consumer stream` binary against
// the local stack (Kinesis, DynamoDB, STS with an external ID, kfake):
// readiness turns 200 once leases are held, every event reaches Kafka
// (read back by kcat), metrics count them, SIGTERM drains and exits 0, and
// no secret appears in the logs. A wrong external ID exits 3.
func TestStreamBinaryEndToEnd(t *testing.T) {
	bin := consumerBinary(t)
	st := awstest.StartStack(t)
	kc := kafkatest.Start(t, 1, 4, "events.onewelcome", "events.dlq")
	ctx := context.Background()
	cfg := assumedConfig(t, st)
	kin := createStream(t, st, "ow", 2)
	const n = 1000
	var entries []types.PutRecordsRequestEntry
	for i := range n / 5 {
		var evs []string
		for j := range 5 {
			evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"e-%d-%d","type":"UserCreatedEvent","aggregateId":"a%d","tenantId":"t","occurredTime":"2024-01-01T00:00:00Z"},"payload":{}}`, i, j, i%17))
		}
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), PartitionKey: aws.String(fmt.Sprint(i % 17))})
	}
	entries = append(entries, types.PutRecordsRequestEntry{Data: []byte("not json"), PartitionKey: aws.String("poison")})
	if _, err := kin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("ow"), Records: entries}); err != nil {
		t.Fatal(err)
	}

	port := testnet.FreePorts(t, 1)[0]
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	env := append(os.Environ(), st.Env(st.ExternalID)...)
	env = append(env, "EVENTRELAY_SOURCE_KINESIS_STREAM=ow", "EVENTRELAY_SOURCE_KINESIS_SHARD_SYNC_INTERVAL=300ms",
		"EVENTRELAY_SOURCE_KINESIS_APPLICATION=e2e", "EVENTRELAY_LOG_FORMAT=json", "EVENTRELAY_LOG_LEVEL=debug",
		"EVENTRELAY_SINK_KAFKA_BROKERS="+kc.Addrs[0], "EVENTRELAY_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
	cmd := exec.Command(bin, "stream")
	cmd.Env = env
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testwait.Until(t, 60*time.Second, "/readyz 200", func() bool { code, _ := httpGet(base + "/readyz"); return code == 200 }, logs.String)
	if code, _ := httpGet(base + "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	testwait.Until(t, 60*time.Second, "every event counted in /metrics", func() bool {
		_, m := httpGet(base + "/metrics")
		return strings.Contains(m, fmt.Sprintf("eventrelay_kinesis_events_total %d", n))
	}, logs.String)
	_, metrics := httpGet(base + "/metrics")
	checkMonitoringNames(t, metrics, func(name string) bool { return !strings.HasPrefix(name, "eventrelay_replay_") })
	for _, name := range []string{"eventrelay_sink_messages_total", "eventrelay_kinesis_leases_held 2", "eventrelay_kinesis_behind_latest_seconds", "eventrelay_kinesis_checkpoints_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	recs := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome")
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.Headers["event-id"]] = true
	}
	if len(recs) != n || len(ids) != n {
		t.Errorf("kcat read %d records (%d distinct), want %d", len(recs), len(ids), n)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("no exit within 40s of SIGTERM\n%s", logs.String())
	}
	// The drain checkpointed every shard at its last record.
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(st.DynamoDBURL) })
	scan, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("e2e"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	checkpointed := 0
	for _, item := range scan.Items {
		if _, ok := item["Checkpoint"]; ok {
			checkpointed++
		}
		if owner, ok := item["AssignedTo"]; ok {
			t.Errorf("lease still held after the drain: %v", owner)
		}
	}
	if checkpointed != 2 {
		t.Errorf("%d of 2 shards checkpointed after SIGTERM", checkpointed)
	}
	out := logs.String()
	if !strings.Contains(out, "stream worker stopped") {
		t.Errorf("no clean drain in the logs:\n%s", out)
	}
	for _, s := range []string{st.ExternalID, st.BaseSecret} {
		if strings.Contains(out, s) {
			t.Errorf("logs leak a secret %q", s)
		}
	}

	// A wrong external ID fails fast with exit code 3 and says what to check.
	bad := exec.Command(bin, "stream")
	bad.Env = append(append(os.Environ(), st.Env("not-the-external-id")...), "EVENTRELAY_SOURCE_KINESIS_STREAM=ow",
		"EVENTRELAY_SINK_KAFKA_BROKERS="+kc.Addrs[0], "EVENTRELAY_HTTP_ADDR=off", "EVENTRELAY_LOG_FORMAT=json")
	badOut, err := bad.CombinedOutput()
	if code := bad.ProcessState.ExitCode(); code != exitCredentials || !strings.Contains(string(badOut), "external ID") || strings.Contains(string(badOut), "not-the-external-id") {
		t.Errorf("wrong external ID: exit %d (%v), output:\n%s", code, err, badOut)
	}
}

// monitoringNames are the metric names the Grafana dashboard and the alert
// rules use.
func monitoringNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`eventrelay_[a-z_]+`)
	for _, f := range []string{"../../deploy/grafana/alerts.yaml", "../../deploy/grafana/eventrelay-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllString(string(b), -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				m = strings.TrimSuffix(m, suf)
			}
			names[m] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d metric names found in the dashboard and alerts", len(names))
	}
	return names
}

// checkMonitoringNames fails for every dashboard or alert metric (selected
// by want) missing from a /metrics scrape.
func checkMonitoringNames(t *testing.T, scrape string, want func(string) bool) {
	t.Helper()
	exposed := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			name := strings.Fields(line)[2]
			exposed[name] = true
			// Prometheus base units: seconds and bytes, never millis or kilobytes.
			for _, unit := range []string{"millis", "_ms", "milliseconds", "_kb", "kilobytes", "_minutes"} {
				if strings.HasPrefix(name, "eventrelay_") && strings.Contains(name, unit) {
					t.Errorf("metric %s is not in a base unit (%s)", name, unit)
				}
			}
		}
	}
	for name := range monitoringNames(t) {
		if want(name) && !exposed[name] {
			t.Errorf("the dashboard or alerts use %s, which /metrics does not expose", name)
		}
	}
}

// TestReplayMetricsWhileRunning scrapes a running `consumer replay` for the
// replay metrics the dashboard uses.
func TestReplayMetricsWhileRunning(t *testing.T) {
	bin := consumerBinary(t)
	dir := t.TempDir()
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, `{"id":"r%d","eventName":"e","payload":{},"created":"2024-02-01T00:00:00Z"}`+"\n", i)
	}
	os.WriteFile(filepath.Join(dir, "part.json"), []byte(b.String()), 0o644)
	port := testnet.FreePorts(t, 1)[0]
	cmd := exec.Command(bin, "replay", dir, "--sink", "stdout", "--format", "fulfillmenttools", "--tenant", "acme", "--rate", "100",
		"--http-addr", "127.0.0.1:"+strconv.Itoa(port), "--state", filepath.Join(t.TempDir(), "s.json"))
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var scrape string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); code == 200 && strings.Contains(body, "eventrelay_replay_events_total") {
			scrape = body
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkMonitoringNames(t, scrape, func(name string) bool { return strings.HasPrefix(name, "eventrelay_replay_") })
	cmd.Process.Kill()
}
