package iam_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/awstest"
)

// This file runs the real `consumer` binary through each code path that
// talks to AWS, against the local stack with every request going through
// a SigV4-verifying, recording proxy. Test data is written straight to the
// emulators, not through the proxies, so only the binary's requests are
// recorded.

const (
	region          = "us-east-1"
	customerAccount = "111122223333" // the stream's account: kinesis-local runs with this account id
	relayAccount    = "444455556666" // the pod role's account (lease table, replay bucket)
	relayRoleARN    = "arn:aws:iam::" + relayAccount + ":role/eventrelay"
	bucket          = "onewelcome-export"
	prefix          = "exports/"
	waitFor         = 60 * time.Second
)

// rig is the local stack, the S3 store and the binary.
type rig struct {
	t   *testing.T
	bin string
	st  *awstest.Stack
	s3  *awstest.S3
	kin *kinesis.Client // straight to kinesis-local, for test data
}

// run is what one code path sent to AWS.
type run struct {
	Path   string
	Stream string // the stream the path reads (for calls naming none)
	Table  string // the lease table
	Calls  []awstest.Call
	STS    []awstest.STSCall
	// Want are actions the path exists for: a run without them did not
	// take the path (and proves nothing about it).
	Want []string
}

// expect sets the actions rn must have recorded.
func (rn run) expect(actions ...string) run {
	rn.Want = actions
	return rn
}

func newRig(t *testing.T) *rig {
	// kinesis-local names its ARNs after AWS_ACCOUNT_ID; it inherits the
	// test's environment when StartStack starts it.
	t.Setenv("AWS_ACCOUNT_ID", customerAccount)
	st := awstest.StartStack(t) // skips (or fails under EVENTRELAY_REQUIRE_EMULATORS) without the emulators
	r := &rig{t: t, st: st, s3: awstest.StartS3(t, st.STS)}
	for _, p := range []*awstest.SigningProxy{st.KinesisProxy, st.DynamoDBProxy, r.s3.Proxy} {
		p.RecordCalls()
	}
	r.kin = kinesis.NewFromConfig(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("test-data", "test-data", "")},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String(st.Kinesis.URL) })
	r.bin = buildConsumer(t)
	return r
}

// buildConsumer builds the production binary into the test's temp dir.
func buildConsumer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "consumer")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/eventrelay/eventrelay/cmd/consumer").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/consumer: %v\n%s", err, out)
	}
	return bin
}

// record runs fn and returns the calls the proxies and the STS server saw
// meanwhile. Paths run one after another and each waits for its process
// to exit, so nothing else is in flight.
func (r *rig) record(path, stream, table string, fn func()) run {
	p := []*awstest.SigningProxy{r.st.KinesisProxy, r.st.DynamoDBProxy, r.s3.Proxy}
	marks := []int{len(p[0].Calls()), len(p[1].Calls()), len(p[2].Calls())}
	stsMark := len(r.st.STS.Calls())
	start := time.Now()
	fn()
	r.t.Logf("path %s ran in %s", path, time.Since(start).Round(100*time.Millisecond))
	out := run{Path: path, Stream: stream, Table: table, STS: r.st.STS.Calls()[stsMark:]}
	for i, proxy := range p {
		out.Calls = append(out.Calls, proxy.Calls()[marks[i]:]...)
	}
	return out
}

// env is the binary's whole environment: nothing of the machine's AWS
// settings leaks in.
func (r *rig) env(extra ...string) []string {
	home := r.t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_STATE_HOME=" + home,
		"EVENTRELAY_HTTP_ADDR=off", "EVENTRELAY_LOG_FORMAT=json", "EVENTRELAY_LOG_LEVEL=info",
		"EVENTRELAY_AWS_ENDPOINTS_S3=" + r.s3.URL}
	return append(append(env, r.st.Env(r.st.ExternalID)...), extra...)
}

// streamEnv configures `consumer stream` for stream and application.
func (r *rig) streamEnv(stream, app string, extra ...string) []string {
	return r.env(append([]string{"EVENTRELAY_SOURCE_KINESIS_STREAM=" + stream, "EVENTRELAY_SOURCE_KINESIS_APPLICATION=" + app,
		"EVENTRELAY_SOURCE_KINESIS_SHARD_SYNC_INTERVAL=300ms", "EVENTRELAY_SOURCE_KINESIS_FAILOVER_TIME=3s",
		"EVENTRELAY_SOURCE_KINESIS_DRAIN_TIMEOUT=10s", "EVENTRELAY_SINK_TYPE=stdout"}, extra...)...)
}

// event is a OneWelcome event with id, occurring at.
func event(id string, at time.Time) string {
	return fmt.Sprintf(`{"metadata":{"eventId":%q,"type":"UserCreatedEvent","category":"public","aggregateId":"a-%s","tenantId":"t","occurredTime":%q},"payload":{}}`,
		id, id, at.UTC().Format(time.RFC3339Nano))
}

// createStream makes a stream of n shards on kinesis-local and puts one
// envelope per id.
func (r *rig) createStream(name string, shards int32, ids ...string) {
	r.t.Helper()
	ctx := context.Background()
	if _, err := r.kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		r.t.Fatalf("creating stream %s: %v", name, err)
	}
	r.waitActive(name)
	r.put(name, ids...)
}

func (r *rig) waitActive(name string) {
	r.t.Helper()
	if err := kinesis.NewStreamExistsWaiter(r.kin, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond }).
		Wait(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 30*time.Second); err != nil {
		r.t.Fatalf("waiting for stream %s: %v", name, err)
	}
}

func (r *rig) put(stream string, ids ...string) {
	r.t.Helper()
	if len(ids) == 0 {
		return
	}
	var entries []types.PutRecordsRequestEntry
	for _, id := range ids {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + event(id, time.Now()) + `]}`), PartitionKey: aws.String(id)})
	}
	out, err := r.kin.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
		r.t.Fatalf("putting records on %s: %v (%v failed)", stream, err, out)
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// putExport stores a gzipped Firehose object of one envelope per event
// under the hour folder of the first event's time.
func (r *rig) putExport(key string, at time.Time, ids ...string) {
	var evs []string
	for i, id := range ids {
		evs = append(evs, event(id, at.Add(time.Duration(i)*time.Second)))
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(`{"events":[` + strings.Join(evs, ",") + `]}`))
	zw.Close()
	r.s3.Put(r.t, bucket, prefix+"public/"+at.UTC().Format("2006/01/02/15")+"/"+key, z.Bytes())
}

// proc is a running binary whose stdout (events) and stderr (logs) can be
// waited on.
type proc struct {
	t         *testing.T
	cmd       *exec.Cmd
	out, logs *watched
	exited    chan struct{}
	err       error
}

func (r *rig) start(env []string, args ...string) *proc {
	r.t.Helper()
	p := &proc{t: r.t, cmd: exec.Command(r.bin, args...), out: newWatched(), logs: newWatched(), exited: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.out, p.logs
	if err := p.cmd.Start(); err != nil {
		r.t.Fatalf("starting consumer %v: %v", args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	r.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitOut waits until the events on stdout satisfy cond.
func (p *proc) waitOut(what string, cond func(out string) bool) {
	p.t.Helper()
	if !p.out.wait(cond, p.exited) {
		p.t.Fatalf("consumer %v: %s did not happen within %s (%s)\nstdout:\n%s\nlogs:\n%s", p.cmd.Args[1:], what, waitFor, p.status(), p.out, p.logs)
	}
}

// waitLogs waits until the logs satisfy cond.
func (p *proc) waitLogs(what string, cond func(logs string) bool) {
	p.t.Helper()
	if !p.logs.wait(cond, p.exited) {
		p.t.Fatalf("consumer %v: %s did not happen within %s (%s)\nlogs:\n%s", p.cmd.Args[1:], what, waitFor, p.status(), p.logs)
	}
}

// status says whether the process still runs or how it ended.
func (p *proc) status() string {
	select {
	case <-p.exited:
		return fmt.Sprintf("exited: %v", p.err)
	default:
		return "still running"
	}
}

// stop sends SIGTERM (a graceful drain) and waits for the exit.
func (p *proc) stop() error {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(waitFor):
		p.t.Fatalf("consumer %v did not exit within %s of SIGTERM\nlogs:\n%s", p.cmd.Args[1:], waitFor, p.logs)
		return nil
	}
}

// wait for exit.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(waitFor):
		p.t.Fatalf("consumer %v did not exit within %s\nlogs:\n%s", p.cmd.Args[1:], waitFor, p.logs)
		return nil
	}
}

// watched is an output buffer that wakes waiters on every write.
type watched struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newWatched() *watched { return &watched{changed: make(chan struct{})} }

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// wait returns true once cond holds, false when the process exited
// without it or waitFor passed.
func (w *watched) wait(cond func(string) bool, exited <-chan struct{}) bool {
	deadline := time.After(waitFor)
	for {
		w.mu.Lock()
		s, changed := w.b.String(), w.changed
		w.mu.Unlock()
		if cond(s) {
			return true
		}
		select {
		case <-changed:
		case <-exited:
			// The last output may have raced with the exit.
			return cond(w.String())
		case <-deadline:
			return false
		}
	}
}

// events counts the event lines the stdout sink printed.
func events(out string) int { return strings.Count(out, `{"id":`) }
