package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// idsIn counts the event-id headers kcat reads back from topic.
func idsIn(t *testing.T, addrs []string, topic string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range kafkatest.Kcat(t, addrs, topic) {
		ids[r.Headers["event-id"]]++
	}
	return ids
}

// TestReplayPreviewThenKafka: `replay --sink stdout` (the preview the help
// suggests) used to record the objects as done, so the real replay to
// Kafka that followed sent nothing and exited 0.
func TestReplayPreviewThenKafka(t *testing.T) {
	kc := kafkatest.Start(t, 1, 3)
	dir := firehoseExport(t, 50)
	xdg := []string{"XDG_STATE_HOME=" + t.TempDir()}
	if code, out := replayBin(t, xdg, dir, "--sink", "stdout"); code != exitOK || strings.Count(out, `"source":"onewelcome"`) != 50 {
		t.Fatalf("preview: exit %d\n%s", code, out)
	}
	if code, out := replayBin(t, xdg, dir, "--brokers", kc.Addrs[0]); code != exitOK {
		t.Fatalf("replay to kafka after the preview: exit %d\n%s", code, out)
	}
	if ids := idsIn(t, kc.Addrs, "events.onewelcome"); len(ids) != 50 {
		t.Errorf("kafka holds %d events after the preview and the replay, want 50", len(ids))
	}
}

// TestReplayIdentity: a replay to another topic, or with another tenant,
// is another replay: the progress of the first does not skip its objects.
// Before, the state was named after the URLs and the window only.
func TestReplayIdentity(t *testing.T) {
	kc := kafkatest.Start(t, 1, 3)
	dir := filepath.Join(t.TempDir(), "ocff-acme-prd-public-events-export-bucket")
	os.MkdirAll(filepath.Join(dir, "2024-02-01"), 0o755)
	os.WriteFile(filepath.Join(dir, "2024-02-01", "000000000000.json"), []byte(
		`{"id":"b0a0e08e-d7d0-4694-ad6c-bbf47b3fc1c6","eventName":"order-created_event-v1","payload":{"id":"o1"},"created":"2024-02-01T09:20:39.411067+00:00"}`+"\n"), 0o644)
	xdg := "XDG_STATE_HOME=" + t.TempDir()
	for _, run := range []struct{ env, tenant string }{
		{"EVENTRELAY_SINK_KAFKA_TOPIC=a.{source}", "acmee"}, // a typo
		{"EVENTRELAY_SINK_KAFKA_TOPIC=a.{source}", "acme"},  // fixed: must be sent again
		{"EVENTRELAY_SINK_KAFKA_TOPIC=b.{source}", "acme"},  // another topic: must be sent there too
		{"EVENTRELAY_SINK_KAFKA_TOPIC=b.{source}", "acme"},  // the same replay again: nothing new
	} {
		if code, out := replayBin(t, []string{xdg, run.env}, dir, "--brokers", kc.Addrs[0], "--tenant", run.tenant); code != exitOK {
			t.Fatalf("%s --tenant %s: exit %d\n%s", run.env, run.tenant, code, out)
		}
	}
	tenants := map[string]int{}
	for _, r := range kafkatest.Kcat(t, kc.Addrs, "a.fulfillmenttools") {
		tenants[r.Headers["event-tenant"]]++
	}
	if tenants["acme"] != 1 || tenants["acmee"] != 1 {
		t.Errorf("a.fulfillmenttools tenants %v, want the event once as acmee and once as acme", tenants)
	}
	if ids := idsIn(t, kc.Addrs, "b.fulfillmenttools"); len(ids) != 1 || ids["b0a0e08e-d7d0-4694-ad6c-bbf47b3fc1c6"] != 1 {
		t.Errorf("b.fulfillmenttools holds %v, want the event once", ids)
	}
}

// TestReplayOverlappingURLs: the same export named twice (spelled
// differently) is read once. Before, objects were read by each URL.
func TestReplayOverlappingURLs(t *testing.T) {
	dir := firehoseExport(t, 40)
	code, out := replayBin(t, nil, dir, dir+"/", "--sink", "stdout")
	if n := strings.Count(out, `"source":"onewelcome"`); code != exitOK || n != 40 {
		t.Errorf("exit %d, %d events printed, want 40:\n%s", code, n, out)
	}
}

// TestReplayTopicMissingKeepsOtherObjects: one object's topic is missing
// (exit 4) while another object's events reach their topic; the state
// records what was delivered, so the rerun after the topic is created sends
// those events no second time. Before, the stop cancelled every object's
// delivery and recorded nothing, and the rerun duplicated them.
func TestReplayTopicMissingKeepsOtherObjects(t *testing.T) {
	kc := kafkatest.StartStrict(t, 1, 3, "events", "events.dlq", "ow.log")
	dir := firehoseExport(t, 30) // category public
	logDir := filepath.Join(dir, "log", "2024", "02", "01", "09")
	os.MkdirAll(logDir, 0o755)
	var b strings.Builder
	for i := range 20 {
		b.WriteString(`{"events":[{"metadata":{"eventId":"log-` + string(rune('a'+i)) + `","type":"UserLoginFailedEvent","category":"log","aggregateId":"a","tenantId":"t","occurredTime":"2024-02-01T09:30:00Z","description":"x"}}]}` + "\n")
	}
	os.WriteFile(filepath.Join(logDir, "export-log"), []byte(b.String()), 0o644)
	state := filepath.Join(t.TempDir(), "s.json")
	env := []string{"EVENTRELAY_SINK_KAFKA_TOPIC=ow.{category}"}
	if code, out := replayBin(t, env, dir, "--brokers", kc.Addrs[0], "--state", state); code != exitTopicMissing {
		t.Fatalf("exit %d, want %d:\n%s", code, exitTopicMissing, out)
	}
	kafkatest.CreateTopic(t, kc.Addrs, "ow.public", 3)
	if code, out := replayBin(t, env, dir, "--brokers", kc.Addrs[0], "--state", state); code != exitOK {
		t.Fatalf("rerun: exit %d:\n%s", code, out)
	}
	for topic, want := range map[string]int{"ow.public": 30, "ow.log": 20} {
		ids := idsIn(t, kc.Addrs, topic)
		dups := 0
		for _, n := range ids {
			dups += n - 1
		}
		if len(ids) != want || dups != 0 {
			t.Errorf("%s: %d events, %d duplicates; want %d once each", topic, len(ids), dups, want)
		}
	}
}
