package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/replay"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/eventrelay/eventrelay/internal/testwait"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// partExport is a OneWelcome Firehose export: 24 hour folders with two
// objects each (one gzip), 40 events per object, keyed by 7 aggregates.
// It returns the objects by key.
func partExport() map[string][]byte { return partExportSized(24, 2, 8) }

// partExportSized is partExport with hours hour folders (from 2024-02-01),
// files objects per folder and envelopes of 5 events per object; every
// second object is gzip.
func partExportSized(hours, files, envelopes int) map[string][]byte {
	objs := map[string][]byte{}
	n := 0
	for h := range hours {
		hour := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour)
		for f := range files {
			var b bytes.Buffer
			for e := range envelopes {
				var evs []string
				for range 5 {
					evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"pt-%05d","type":"UserSignedInEvent","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"%s"},"payload":{"n":%d}}`,
						n, n%7, hour.Add(time.Duration(e*7+f)*time.Second).Format(time.RFC3339Nano), n))
					n++
				}
				fmt.Fprintf(&b, `{"events":[%s]}`+"\n", strings.Join(evs, ","))
			}
			data := b.Bytes()
			if f%2 == 1 {
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(data)
				zw.Close()
				data = z.Bytes()
			}
			objs[fmt.Sprintf("public/%s/onewelcome-events-1-%s-%d", hour.Format("2006/01/02/15"), hour.Format("2006-01-02-15-04-05"), f)] = data
		}
	}
	return objs
}

const partEvents = 24 * 2 * 40

// hermeticEnv is the test process's environment without AWS or eventrelay
// settings, plus env.
func hermeticEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EVENTRELAY_") && !strings.HasPrefix(kv, replay.IndexEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(append(out, "EVENTRELAY_LOG_FORMAT=json", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"), env...)
}

// s3Export serves objs from an in-process gofakes3 bucket and returns the
// environment the binary reads it with.
func s3Export(t *testing.T, bucket string, objs map[string][]byte) []string {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(srv.URL), true
	})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	for k, v := range objs {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s", "EVENTRELAY_AWS_REGION=us-east-1", "EVENTRELAY_AWS_ENDPOINTS_S3=" + srv.URL}
}

// runBin runs the binary with args and env to its end (at most 30s).
func runBin(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	code, out, err := execBin(consumerBinary(t), env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// execBin runs bin with args and env to its end, killing it after 30s (an
// error); unlike runBin it may run on any goroutine.
func execBin(bin string, env []string, args ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return -1, string(out), fmt.Errorf("%v did not end within 30s:\n%s", args, out)
	}
	return cmd.ProcessState.ExitCode(), string(out), nil
}

// keyValues counts the (key, value) pairs of topic, read back with kcat.
func keyValues(t *testing.T, addrs []string, topic string) map[string]int {
	t.Helper()
	kv := map[string]int{}
	for _, r := range kafkatest.Kcat(t, addrs, topic) {
		kv[string(r.Key)+"\x00"+string(r.Value)]++
	}
	return kv
}

// TestReplayBadPartition: a malformed --partition, or index/n without
// $JOB_COMPLETION_INDEX, is a usage error (exit 2) naming the flag and the
// form it wants; --help teaches the flag.
func TestReplayBadPartition(t *testing.T) {
	dir := firehoseExport(t, 10)
	for _, tc := range []struct {
		spec, index string
	}{{"3/3", ""}, {"-1/2", ""}, {"1", ""}, {"0/0", ""}, {"a/b", ""}, {"index/3", ""}, {"index/3", "3"}, {"index/3", "x"}} {
		code, out, stderr := runCLIEnv(t, map[string]string{replay.IndexEnv: tc.index}, "replay", dir, "--partition", tc.spec, "--sink", "stdout", "--http-addr", "off")
		if code != exitUsage || out != "" || !strings.Contains(stderr, "--partition") || !strings.Contains(stderr, "want i/n with 0 <= i < n") {
			t.Errorf("--partition %s ($%s=%q): exit %d, want %d naming --partition and its form\nstderr: %s", tc.spec, replay.IndexEnv, tc.index, code, exitUsage, stderr)
		}
	}
	_, help, _ := runCLI(t, "", "replay", "--help")
	for _, w := range []string{"--partition", "index/n", replay.IndexEnv, "Indexed Job"} {
		if !strings.Contains(help, w) {
			t.Errorf("replay --help does not mention %q", w)
		}
	}
}

// TestReplayPartitionsDeliverOneReplay: three parts of a replay from S3,
// run at once as three processes sharing a state directory, deliver
// exactly the (key, value) pairs one unsplit replay delivers — none twice,
// none missing; the dry runs of the parts list the unsplit replay's
// objects once between them; each part keeps its own state file and names
// its partition in its summary.
func TestReplayPartitionsDeliverOneReplay(t *testing.T) {
	objs := partExport()
	env := s3Export(t, "onewelcome-export", objs)
	kc := kafkatest.Start(t, 1, 3, "whole.onewelcome", "parts.onewelcome", "events.dlq")
	url := "s3://onewelcome-export/public/"
	common := []string{"replay", url, "--brokers", kc.Addrs[0], "--http-addr", "off"}

	code, out := runBin(t, hermeticEnv(append(env, "EVENTRELAY_SINK_KAFKA_TOPIC=whole.{source}", "XDG_STATE_HOME="+t.TempDir())...), common...)
	if code != exitOK {
		t.Fatalf("unsplit replay: exit %d\n%s", code, out)
	}
	_, whole := runBin(t, hermeticEnv(env...), "replay", url, "--dry-run", "--http-addr", "off")

	states := t.TempDir()
	partEnv := hermeticEnv(append(env, "EVENTRELAY_SINK_KAFKA_TOPIC=parts.{source}", "XDG_STATE_HOME="+states)...)
	bin := consumerBinary(t)
	var wg sync.WaitGroup
	codes, outs, errs := make([]int, 3), make([]string, 3), make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			codes[i], outs[i], errs[i] = execBin(bin, partEnv, slices.Concat(common, []string{"--partition", fmt.Sprintf("%d/3", i)})...)
		})
	}
	wg.Wait()
	listed := map[string]int{}
	for i := range 3 {
		if errs[i] != nil {
			t.Fatalf("part %d/3: %v", i, errs[i])
		}
		if codes[i] != exitOK || !strings.Contains(outs[i], fmt.Sprintf(`"partition":"%d/3"`, i)) || !strings.Contains(outs[i], "replay finished") {
			t.Errorf("part %d/3: exit %d, want 0 and a summary naming the partition\n%s", i, codes[i], outs[i])
		}
		_, dry := runBin(t, hermeticEnv(env...), "replay", url, "--dry-run", "--http-addr", "off", "--partition", fmt.Sprintf("%d/3", i))
		for _, l := range objectLines(dry) {
			listed[l]++
		}
	}
	if want := objectLines(whole); len(want) != len(objs) || len(listed) != len(want) {
		t.Errorf("dry runs: the parts list %d objects, the unsplit replay %d (of %d)", len(listed), len(want), len(objs))
	} else {
		for _, l := range want {
			if listed[l] != 1 {
				t.Errorf("dry runs: %s listed by %d parts, want 1", l, listed[l])
			}
		}
	}

	a, b := keyValues(t, kc.Addrs, "whole.onewelcome"), keyValues(t, kc.Addrs, "parts.onewelcome")
	var diff []string
	n := 0
	for kv, c := range a {
		n += c
		if b[kv] != c || c != 1 {
			diff = append(diff, fmt.Sprintf("%q unsplit x%d, parts x%d", kv, c, b[kv]))
		}
	}
	for kv, c := range b {
		if _, ok := a[kv]; !ok {
			diff = append(diff, fmt.Sprintf("%q only from the parts (x%d)", kv, c))
		}
	}
	if n != partEvents || len(diff) > 0 {
		t.Errorf("unsplit replay delivered %d records (want %d); the parts differ in %d pairs: %v", n, partEvents, len(diff), diff[:min(5, len(diff))])
	}
	files, _ := filepath.Glob(filepath.Join(states, "eventrelay", "replay-*-part-*-of-3.json"))
	if len(files) != 3 {
		t.Errorf("state files %v, want one per part", files)
	}
}

// objectLines are the object lines of a dry run (not its # headers).
func objectLines(dry string) []string {
	var out []string
	for _, l := range strings.Split(dry, "\n") {
		if strings.HasPrefix(l, "s3://") || strings.HasPrefix(l, "/") {
			out = append(out, l)
		}
	}
	return out
}

// killOnceRecorded runs the binary with args, waits (at most within) until
// the replay state file state records a finished object, and kills it
// with SIGKILL: a kill mid-run when the run is slowed enough (--rate).
func killOnceRecorded(t *testing.T, env, args []string, state string, within time.Duration) {
	t.Helper()
	cmd := exec.Command(consumerBinary(t), args...)
	cmd.Env = env
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testwait.Until(t, within, "the replay to record an object", func() bool { return len(stateOf(state)) > 0 }, logs.String)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// stateOf reads a replay state file's completed objects (nil when it is
// not there yet).
func stateOf(path string) map[string]json.RawMessage {
	var st struct {
		Completed map[string]json.RawMessage `json:"completed"`
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return nil
	}
	return st.Completed
}

// TestReplayPartitionKilledResumesAlone: parts 0 and 2 of a directory
// replay finish; part 1 is killed (SIGKILL) once it recorded an object
// and rerun: it resumes from its own state and finishes, and every event
// reached Kafka — repeats only from part 1's objects in flight at the
// kill. The other parts' state files are untouched, and rerunning a
// finished part sends nothing.
func TestReplayPartitionKilledResumesAlone(t *testing.T) {
	dir := t.TempDir()
	for k, v := range partExport() {
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kc := kafkatest.Start(t, 1, 3, "events.onewelcome", "events.dlq")
	states := t.TempDir()
	env := hermeticEnv()
	part := func(i int, extra ...string) []string {
		return append([]string{"replay", dir, "--brokers", kc.Addrs[0], "--http-addr", "off", "--partition", fmt.Sprintf("%d/3", i),
			"--state", filepath.Join(states, fmt.Sprintf("part-%d.json", i))}, extra...)
	}
	for _, i := range []int{0, 2} {
		if code, out := runBin(t, env, part(i)...); code != exitOK {
			t.Fatalf("part %d: exit %d\n%s", i, code, out)
		}
	}
	snapshot := func() map[string]string {
		s := map[string]string{}
		for _, i := range []int{0, 2} {
			p := filepath.Join(states, fmt.Sprintf("part-%d.json", i))
			b, _ := os.ReadFile(p)
			st, _ := os.Stat(p)
			s[p] = fmt.Sprintf("%s %x", st.ModTime(), b)
		}
		return s
	}
	before := snapshot()
	_, dry := runBin(t, env, append(part(1), "--dry-run")...)
	mine := objectLines(dry)

	// Part 1, slowed to 50 events/s (its ~500 events would take 10s), is
	// killed once its state records a finished object.
	state1 := filepath.Join(states, "part-1.json")
	killOnceRecorded(t, env, part(1, "--rate", "50", "--concurrency", "2"), state1, 15*time.Second)
	if done := len(stateOf(state1)); done >= len(mine) {
		t.Fatalf("part 1 had finished all %d objects before the kill: not a mid-run kill", done)
	}
	t.Logf("part 1 killed with %d of its %d objects recorded", len(stateOf(state1)), len(mine))

	code, out := runBin(t, env, part(1)...)
	if code != exitOK || !strings.Contains(out, `"partition":"1/3"`) || !strings.Contains(out, "objects_already_done") {
		t.Fatalf("rerun of part 1: exit %d\n%s", code, out)
	}
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("the state files of parts 0 and 2 changed while part 1 was killed and rerun")
	}
	recs := kafkatest.Kcat(t, kc.Addrs, "events.onewelcome")
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Headers[sink.HeaderEventID]]++
	}
	for i := range partEvents {
		if id := fmt.Sprintf("pt-%05d", i); counts[id] == 0 {
			t.Errorf("%s never reached Kafka", id)
		}
	}
	dups := 0
	for _, r := range recs {
		if counts[r.Headers[sink.HeaderEventID]] > 1 {
			dups++
			obj, _, _ := strings.Cut(r.Headers[sink.HeaderPosition], ":")
			if !slices.ContainsFunc(mine, func(l string) bool { return strings.Contains(l, "/"+obj+"\t") }) {
				t.Errorf("%s repeated from %s, not an object of part 1", r.Headers[sink.HeaderEventID], obj)
			}
		}
	}
	if bound := 2 * 40 * 2; dups > bound { // objects in flight x events per object, each sent twice at most
		t.Errorf("%d repeated records, above the %d of part 1's objects in flight", dups, bound)
	}

	for _, i := range []int{0, 2} {
		if code, out := runBin(t, env, part(i)...); code != exitOK || !strings.Contains(out, `"events":0`) {
			t.Errorf("rerun of finished part %d: exit %d\n%s", i, code, out)
		}
	}
	if n := len(kafkatest.Kcat(t, kc.Addrs, "events.onewelcome")); n != len(recs) {
		t.Errorf("reruns of finished parts sent %d records", n-len(recs))
	}
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("rerunning finished parts rewrote their state files")
	}
}
