package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
)

const liveEnvelope = `{"events":[` +
	`{"metadata":{"eventId":"11111111-0000-4000-8000-000000000001","type":"UserSignedInEvent","category":"public","aggregateId":"agg-1","tenantId":"t1","occurredTime":"2024-02-01T09:00:00.123456+01:00"},"payload":{"idp":"x"}},` +
	`{"metadata":{"eventId":"11111111-0000-4000-8000-000000000002","type":"UserCreatedEvent","category":"public","aggregateId":"agg-2","tenantId":"t1","occurredTime":"2024-02-01T09:00:01Z"},"payload":{"n":[1,2,3]}},` +
	`{"metadata":{"eventId":"11111111-0000-4000-8000-000000000003","type":"UserSignedOutEvent","category":"log","aggregateId":"agg-1","tenantId":"t2","occurredTime":"2024-02-01T08:00:02+00:00","description":"out"}}]}`

// TestReplayMatchesLive: the same envelope read live from Kinesis by
// `consumer stream` and replayed from a Firehose file by `consumer replay`
// yields identical Kafka messages (key, value, headers) except for the
// source-position header.
func TestReplayMatchesLive(t *testing.T) {
	bin := consumerBinary(t)
	st := awstest.StartStack(t)
	kc := kafkatest.Start(t, 1, 3, "live.onewelcome", "replayed.onewelcome", "events.dlq")
	ctx := context.Background()
	kin := createStream(t, st, "live", 1)
	if _, err := kin.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("live"), Data: []byte(liveEnvelope), PartitionKey: aws.String("agg-1")}); err != nil {
		t.Fatal(err)
	}
	stream := exec.Command(bin, "stream")
	stream.Env = append(append(os.Environ(), st.Env(st.ExternalID)...), "EVENTRELAY_SOURCE_KINESIS_STREAM=live",
		"EVENTRELAY_SOURCE_KINESIS_SHARD_SYNC_INTERVAL=300ms", "EVENTRELAY_SINK_KAFKA_BROKERS="+kc.Addrs[0],
		"EVENTRELAY_SINK_KAFKA_TOPIC=live.{source}", "EVENTRELAY_HTTP_ADDR=off", "EVENTRELAY_LOG_FORMAT=json")
	var logs syncBuf
	stream.Stdout, stream.Stderr = &logs, &logs
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	defer stream.Process.Kill()
	live := kafkatest.Consume(t, kc.Addrs, "live.onewelcome", 3, 60*time.Second)
	if len(live) != 3 {
		t.Fatalf("live path delivered %d messages\n%s", len(live), logs.String())
	}

	dir := t.TempDir()
	hourDir := filepath.Join(dir, "public", "2024", "02", "01", "08")
	os.MkdirAll(hourDir, 0o755)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(liveEnvelope))
	zw.Close()
	os.WriteFile(filepath.Join(hourDir, "export-1"), z.Bytes(), 0o644)
	rep := exec.Command(bin, "replay", dir, "--brokers", kc.Addrs[0], "--http-addr", "off", "--state", filepath.Join(t.TempDir(), "s.json"))
	rep.Env = append(os.Environ(), "EVENTRELAY_SINK_KAFKA_TOPIC=replayed.{source}")
	if out, err := rep.CombinedOutput(); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	replayed := kafkatest.Consume(t, kc.Addrs, "replayed.onewelcome", 3, 30*time.Second)
	byID := map[string]kafkatest.Record{}
	for _, r := range replayed {
		byID[r.Headers[sink.HeaderEventID]] = r
	}
	for _, l := range live {
		r, ok := byID[l.Headers[sink.HeaderEventID]]
		if !ok {
			t.Fatalf("event %s not replayed", l.Headers[sink.HeaderEventID])
		}
		if !bytes.Equal(l.Key, r.Key) || !bytes.Equal(l.Value, r.Value) || l.Partition != r.Partition {
			t.Errorf("event %s: live key %q partition %d, replayed key %q partition %d (or values differ)", l.Headers[sink.HeaderEventID], l.Key, l.Partition, r.Key, r.Partition)
		}
		for h, v := range l.Headers {
			if h != sink.HeaderPosition && r.Headers[h] != v {
				t.Errorf("header %s: live %q, replayed %q", h, v, r.Headers[h])
			}
		}
		if len(r.Headers) != len(l.Headers) || !strings.HasPrefix(l.Headers[sink.HeaderPosition], "shardId-") || !strings.Contains(r.Headers[sink.HeaderPosition], "export-1") {
			t.Errorf("positions: live %q, replayed %q", l.Headers[sink.HeaderPosition], r.Headers[sink.HeaderPosition])
		}
	}
}

// TestReplayCommand covers the CLI's dry run, window and exit codes.
func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "2024-02-01"), 0o755)
	os.MkdirAll(filepath.Join(dir, "2024-02-02"), 0o755)
	line := func(id, ts string) string {
		return `{"id":"` + id + `","eventName":"order-created_event-v1","payload":{"id":"o"},"created":"` + ts + `"}` + "\n"
	}
	os.WriteFile(filepath.Join(dir, "2024-02-01", "000000000000.json"), []byte(line("a", "2024-02-01T10:00:00Z")+line("b", "2024-02-01T23:00:00Z")), 0o644)
	os.WriteFile(filepath.Join(dir, "2024-02-02", "000000000000.json"), []byte(line("c", "2024-02-02T01:00:00Z")), 0o644)
	state := filepath.Join(t.TempDir(), "s.json")

	code, out, stderr := runCLI(t, "", "replay", "--dry-run", dir, "--from", "2024-02-02", "--tenant", "acme", "--http-addr", "off")
	// The day before --from is listed too: the vendor's day folders need not be UTC days.
	if code != exitOK || !strings.Contains(out, "layout daily") || !strings.Contains(out, "2024-02-02/000000000000.json") || !strings.Contains(out, "2024-02-01/") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, _ = runCLI(t, "", "replay", dir, "--sink", "stdout", "--from", "2024-02-01T12", "--tenant", "acme", "--state", state, "--http-addr", "off")
	if code != exitOK || strings.Count(out, "\n") != 2 || strings.Contains(out, `"id":"a"`) || !strings.Contains(out, `"tenant":"acme"`) {
		t.Errorf("window: exit %d, out:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "replay", dir, "--sink", "stdout", "--from", "2024-02-01T12", "--tenant", "acme", "--state", state, "--http-addr", "off")
	if code != exitOK || out != "" {
		t.Errorf("finished replay repeated: exit %d, out %q", code, out)
	}
	for _, args := range [][]string{{"replay"}, {"replay", dir, "--from", "yesterday"}, {"replay", "/nonexistent/dir"}, {"replay", dir, "--layout", "zip"}} {
		if code, _, _ := runCLI(t, "", append(args, "--sink", "stdout", "--http-addr", "off")...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	z := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	os.WriteFile(filepath.Join(dir, "2024-02-02", "000000000001.json.gz"), z, 0o644)
	if code, _, stderr := runCLI(t, "", "replay", dir, "--sink", "stdout", "--tenant", "acme", "--restart", "--state", state, "--http-addr", "off"); code != exitBadInput || !strings.Contains(stderr, "000000000001.json.gz") {
		t.Errorf("corrupt object: exit %d, stderr %s", code, stderr)
	}
}

// TestBackfillThenFollow: events exported before T0 and events put on the
// stream around T0, with an overlap present in both, each reach Kafka once.
func TestBackfillThenFollow(t *testing.T) {
	bin := consumerBinary(t)
	st := awstest.StartStack(t)
	kc := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.dlq")
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	event := func(i int) (string, time.Time) {
		at := t0.Add(time.Duration(i-99) * 12 * time.Second) // e99 at T0; e0 about 20 min before
		return fmt.Sprintf(`{"metadata":{"eventId":"bf-%03d","type":"UserSignedInEvent","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"%s"},"payload":{}}`, i, i%5, at.Format(time.RFC3339Nano)), at
	}
	// The export holds e0..e99 in hour folders.
	dir := t.TempDir()
	files := map[string][]string{}
	for i := range 100 {
		ev, at := event(i)
		p := filepath.Join(dir, "public", at.Format("2006/01/02/15"), "export")
		files[p] = append(files[p], `{"events":[`+ev+`]}`)
	}
	for p, lines := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
	}
	// The stream holds e80..e149: e80..e99 are in both.
	kin := createStream(t, st, "bf", 2)
	for i := 80; i < 150; i++ {
		ev, _ := event(i)
		if _, err := kin.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("bf"), Data: []byte(`{"events":[` + ev + `]}`), PartitionKey: aws.String(fmt.Sprint(i % 5))}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "stream", "--backfill", dir, "--backfill-from", t0.Add(-time.Hour).Format(time.RFC3339), "--backfill-overlap", "10m")
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), st.Env(st.ExternalID)...), "EVENTRELAY_SOURCE_KINESIS_STREAM=bf",
		"XDG_STATE_HOME="+t.TempDir(), // the backfill's state file lands here, not in the real home
		"EVENTRELAY_SOURCE_KINESIS_SHARD_SYNC_INTERVAL=300ms", "EVENTRELAY_SINK_KAFKA_BROKERS="+kc.Addrs[0],
		"EVENTRELAY_HTTP_ADDR=off", "EVENTRELAY_LOG_FORMAT=json")
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	kafkatest.Consume(t, kc.Addrs, "events.onewelcome", 150, 60*time.Second)
	// Once the worker has exited it writes nothing more: every duplicate it
	// would have produced is in the topic when kcat reads it.
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	recs := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome")
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Headers["event-id"]]++
	}
	for i := range 150 {
		if id := fmt.Sprintf("bf-%03d", i); counts[id] != 1 {
			t.Errorf("%s reached Kafka %d times, want once", id, counts[id])
		}
	}
	if len(recs) != 150 {
		t.Errorf("%d records, want 150\n%s", len(recs), logs.String())
	}
	if !strings.Contains(logs.String(), "backfill done") {
		t.Errorf("no backfill in the logs:\n%s", logs.String())
	}
}

// TestReplayOversizeDeadLettersTellRealSize: an event over --max-event-size
// and a record over --max-record-size each reach the DLQ as a prefix, with
// dlq-truncated-from giving the real length (read back by kcat), and the
// good events around them are delivered. It failed when the header was set
// only for values cut to fit Kafka, so a decoder's prefix looked whole.
func TestReplayOversizeDeadLettersTellRealSize(t *testing.T) {
	bin := consumerBinary(t)
	kc := kafkatest.Start(t, 1, 1, "events.onewelcome", "events.dlq")
	ev := func(id, pad string) string {
		return `{"metadata":{"eventId":"` + id + `","type":"UserUpdatedEvent","category":"public","aggregateId":"agg-` + id + `","tenantId":"t1","occurredTime":"2024-02-01T08:10:00Z"},"payload":{"pad":"` + pad + `"}}`
	}
	big := ev("big", strings.Repeat("b", 3000))
	many := make([]string, 40)
	for i := range many {
		many[i] = ev(fmt.Sprintf("many-%02d", i), strings.Repeat("m", 400))
	}
	wide := `{"events":[` + strings.Join(many, ",") + `]}`
	lines := []string{
		`{"events":[` + ev("before", "x") + `,` + big + `]}`,
		wide,
		`{"events":[` + ev("after", "y") + `]}`,
	}
	dir := t.TempDir()
	hourDir := filepath.Join(dir, "public", "2024", "02", "01", "08")
	os.MkdirAll(hourDir, 0o755)
	os.WriteFile(filepath.Join(hourDir, "export-1"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)

	rep := exec.Command(bin, "replay", dir, "--brokers", kc.Addrs[0], "--http-addr", "off", "--max-event-size", "1000",
		"--max-record-size", "8000", "--state", filepath.Join(t.TempDir(), "s.json"))
	if out, err := rep.CombinedOutput(); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if got := idsIn(t, kc.Addrs, "events.onewelcome"); len(got) != 2 || got["before"] != 1 || got["after"] != 1 {
		t.Errorf("delivered %v, want before and after once each", got)
	}
	dead := kafkatest.Kcat(t, kc.Addrs, "events.dlq")
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2: %v", len(dead), dead)
	}
	want := map[string]struct {
		prefix string
		from   int
	}{
		"the event over --max-event-size":   {big[:1000], len(big)},
		"the record over --max-record-size": {wide[:8000], len(wide)},
	}
	for what, w := range want {
		found := false
		for _, d := range dead {
			if string(d.Value) != w.prefix {
				continue
			}
			found = true
			if d.Headers[sink.HeaderDLQKind] != "too_large" || d.Headers[sink.HeaderDLQTruncated] != fmt.Sprint(w.from) {
				t.Errorf("%s: %s %q, %s %q, want too_large and %d", what, sink.HeaderDLQKind, d.Headers[sink.HeaderDLQKind],
					sink.HeaderDLQTruncated, d.Headers[sink.HeaderDLQTruncated], w.from)
			}
		}
		if !found {
			t.Errorf("%s: no dead letter holds its first bytes", what)
		}
	}
}
