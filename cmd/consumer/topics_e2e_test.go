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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// firehoseExport writes n OneWelcome events (envelopes of 5) as one gzip
// Firehose object under dir and returns dir.
func firehoseExport(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	hour := filepath.Join(dir, "public", "2024", "02", "01", "09")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	for i := 0; i < n; i += 5 {
		var evs []string
		for j := i; j < min(i+5, n); j++ {
			evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"tp-%05d","type":"UserSignedInEvent","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"2024-02-01T09:00:%02d.5Z"},"payload":{}}`, j, j%7, j%60))
		}
		fmt.Fprintf(zw, `{"events":[%s]}`+"\n", strings.Join(evs, ","))
	}
	zw.Close()
	if err := os.WriteFile(filepath.Join(hour, "export-1.gz"), z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runReplayBin(t *testing.T, brokers, dir, state string) (int, string) {
	t.Helper()
	return replayBin(t, nil, dir, "--brokers", brokers, "--state", state)
}

// replayBin runs `consumer replay args...` with env added, without the
// operations server, and returns its exit code and output.
func replayBin(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(consumerBinary(t), append([]string{"replay", "--http-addr", "off"}, args...)...)
	cmd.Env = append(append(os.Environ(), "EVENTRELAY_LOG_FORMAT=json"), env...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Kill()
		case <-done:
		}
	}()
	out, _ := cmd.CombinedOutput()
	close(done)
	if ctx.Err() != nil {
		t.Fatalf("replay did not exit within 60s:\n%s", out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestReplayCreatesTopics: a broker with Kafka's default
// auto.create.topics.enable and no topics at all receives every event.
// Before sink.kafka.allow_auto_topic_creation every produce failed with
// Unknown Topic Or Partition and was retried forever.
func TestReplayCreatesTopics(t *testing.T) {
	kc := kafkatest.Start(t, 1, 3)
	const n = 300
	code, out := runReplayBin(t, kc.Addrs[0], firehoseExport(t, n), filepath.Join(t.TempDir(), "s.json"))
	if code != exitOK {
		t.Fatalf("replay exit %d:\n%s", code, out)
	}
	if got := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome"); len(got) != n {
		t.Errorf("kcat read %d events, want %d", len(got), n)
	}
	reported := false
	for _, line := range strings.Split(out, "\n") {
		reported = reported || strings.Contains(line, `"topic":"events.dlq"`) && strings.Contains(line, "kafka topic created (auto-creation)")
	}
	if !reported {
		t.Errorf("the startup check does not report the created DLQ topic:\n%s", out)
	}
}

// TestReplayTopicMissing: brokers without auto-creation. A missing static
// topic stops the replay before it reads anything; a missing templated topic
// stops it at the first event that needs it. Both exit 4 naming the topic
// and the remedies, and nothing is recorded as done: once the topic exists,
// rerunning the same command delivers every event.
func TestReplayTopicMissing(t *testing.T) {
	const n = 200
	dir := firehoseExport(t, n)

	none := kafkatest.StartStrict(t, 1, 3)
	code, out := runReplayBin(t, none.Addrs[0], dir, filepath.Join(t.TempDir(), "s.json"))
	if code != exitTopicMissing || !strings.Contains(out, "kafka topics events, events.dlq do not exist") {
		t.Errorf("no topics at all: exit %d, want %d naming events and events.dlq:\n%s", code, exitTopicMissing, out)
	}

	kc := kafkatest.StartStrict(t, 1, 3, "events.dlq", "events")
	state := filepath.Join(t.TempDir(), "s.json")
	code, out = runReplayBin(t, kc.Addrs[0], dir, state)
	for _, want := range []string{"kafka topic events.onewelcome does not exist", "kafka-topics.sh --create --topic events.onewelcome", "auto.create.topics.enable"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if code != exitTopicMissing {
		t.Fatalf("templated topic missing: exit %d, want %d:\n%s", code, exitTopicMissing, out)
	}
	kafkatest.CreateTopic(t, kc.Addrs, "events.onewelcome", 3)
	if code, out := runReplayBin(t, kc.Addrs[0], dir, state); code != exitOK {
		t.Fatalf("rerun after creating the topic: exit %d:\n%s", code, out)
	}
	if got := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome"); len(got) != n {
		t.Errorf("after the rerun kcat read %d events, want %d (the failed run recorded progress it had not delivered)", len(got), n)
	}
}

// TestStreamTopics: `consumer stream` against a broker with auto-creation
// and no topics delivers everything; against one without auto-creation
// and without the events topic it exits 4 by itself, names the topic, and
// checkpoints nothing, so a restart after the topic is created delivers
// every event.
func TestStreamTopics(t *testing.T) {
	t.Run("auto-created", func(t *testing.T) {
		e := &relEnv{bin: consumerBinary(t), st: awstest.StartStack(t), stream: "rel"}
		e.kafka = kafkatest.Start(t, 1, 3)
		e.kc = createStream(t, e.st, e.stream, 2)
		ids := e.put(t, 200)
		p := e.start(t, "w")
		counts := e.count(t, len(ids), 60*time.Second)
		if delivered, lost, _ := tally(ids, counts); lost != 0 {
			t.Errorf("delivered %d, lost %d\n%s", delivered, lost, p.logs.String())
		}
	})
	t.Run("missing", func(t *testing.T) {
		e := &relEnv{bin: consumerBinary(t), st: awstest.StartStack(t), stream: "rel"}
		e.kafka = kafkatest.StartStrict(t, 1, 3, "events.dlq", "events")
		e.kc = createStream(t, e.st, e.stream, 2)
		ids := e.put(t, 100)
		p := e.start(t, "w")
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("the worker did not stop by itself within 60s:\n%s", p.logs.String())
		}
		if code := p.cmd.ProcessState.ExitCode(); code != exitTopicMissing || !strings.Contains(p.logs.String(), "kafka topic events.onewelcome does not exist") {
			t.Fatalf("exit %d, want %d naming the topic:\n%s", code, exitTopicMissing, p.logs.String())
		}
		ddb := dynamodb.NewFromConfig(assumedConfig(t, e.st), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.st.DynamoDBURL) })
		scan, err := ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("rel"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range scan.Items {
			if _, ok := item["Checkpoint"]; ok {
				t.Errorf("a shard was checkpointed although nothing was delivered: %v", item)
			}
		}
		kafkatest.CreateTopic(t, e.kafka.Addrs, "events.onewelcome", 3)
		e.start(t, "w")
		if delivered, lost, _ := tally(ids, e.count(t, len(ids), 60*time.Second)); lost != 0 {
			t.Errorf("after creating the topic: delivered %d, lost %d", delivered, lost)
		}
	})
}
