package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// TestReliabilityStalledDependency pauses (SIGSTOP) the lease table's
// DynamoDB, then Kinesis, under a running worker for 6 s (30 s with
// EVENTRELAY_RELIABILITY=full): each time, within progress_timeout (3 s), a
// log line says which shard waits on what, /readyz turns 503 and
// eventrelay_kinesis_seconds_since_progress exceeds the timeout; after the
// pause nothing is lost. A SIGTERM while DynamoDB is paused ends the
// process within drain_timeout (5 s) plus a 2 s grace. Before, the worker
// logged nothing, stayed ready, and outlived the drain timeout until
// DynamoDB came back.
func TestReliabilityStalledDependency(t *testing.T) {
	pause := time.Duration(size(6, 30)) * time.Second
	for _, tc := range []struct {
		name    string
		pause   func(st *awstest.Stack) *awstest.Emulator
		waiting string
	}{
		{"DynamoDB", func(st *awstest.Stack) *awstest.Emulator { return st.DynamoDB }, "checkpoint to the lease table"},
		{"Kinesis", func(st *awstest.Stack) *awstest.Emulator { return st.Kinesis }, "reading records from Kinesis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRelEnv(t, 2)
			ids := e.put(t, size(200, 2000))
			env := []string{"EVENTRELAY_SOURCE_KINESIS_PROGRESS_TIMEOUT=3s", "EVENTRELAY_SOURCE_KINESIS_DRAIN_TIMEOUT=5s", "EVENTRELAY_SOURCE_KINESIS_IDLE_BETWEEN_READS=100ms"}
			p := e.start(t, "w", env...)
			ready := func(p *proc) func() bool {
				return func() bool { code, _ := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.port)); return code == 200 }
			}
			testwait.Until(t, 60*time.Second, "/readyz 200", ready(p), p.logs.String)
			if _, lost, _ := tally(ids, e.count(t, len(ids), 60*time.Second)); lost != 0 {
				t.Fatalf("%d events lost before the stall", lost)
			}
			emu := tc.pause(e.st)
			if err := emu.Pause(); err != nil {
				t.Fatal(err)
			}
			resumed := false
			defer func() {
				if !resumed {
					emu.Resume()
				}
			}()
			paused := time.Now()
			var more []string
			if tc.name == "DynamoDB" {
				more = e.put(t, size(100, 1000)) // delivered, then the checkpoint stalls
			}
			testwait.Until(t, 20*time.Second, "the stall to be reported", func() bool {
				return strings.Contains(p.logs.String(), "shard made no progress") && strings.Contains(p.logs.String(), tc.waiting)
			}, p.logs.String)
			base := fmt.Sprintf("http://127.0.0.1:%d", p.port)
			testwait.Until(t, 10*time.Second, "/readyz 503", func() bool { code, _ := httpGet(base + "/readyz"); return code == 503 }, p.logs.String)
			detected := time.Since(paused)
			if _, body := httpGet(base + "/readyz"); !strings.Contains(body, "no progress") {
				t.Errorf("/readyz says %q", body)
			}
			if v := maxSeries(p, "eventrelay_kinesis_seconds_since_progress"); v < 3 {
				t.Errorf("eventrelay_kinesis_seconds_since_progress = %v, want > 3", v)
			}
			note := fmt.Sprintf("paused %s; stall logged (waiting on %s) and not ready after %s (progress_timeout 3s)", pause, tc.waiting, detected.Round(100*time.Millisecond))
			time.Sleep(time.Until(paused.Add(pause)))
			if tc.name == "DynamoDB" {
				term := time.Now()
				p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
					note += fmt.Sprintf("; SIGTERM while paused: exited after %s (drain_timeout 5s)", time.Since(term).Round(100*time.Millisecond))
				case <-time.After(9 * time.Second):
					t.Fatalf("still running 9 s after SIGTERM with drain_timeout 5s:\n%s", p.logs.String())
				}
			}
			emu.Resume()
			resumed = true
			back := time.Now()
			if tc.name == "DynamoDB" {
				p = e.start(t, "w2", env...)
			}
			testwait.Until(t, 60*time.Second, "/readyz 200", ready(p), p.logs.String)
			recovery := time.Since(back)
			if tc.name == "Kinesis" {
				more = e.put(t, size(100, 1000)) // read once Kinesis answers again
			}
			all := append(ids, more...)
			delivered, lost, dups := tally(all, e.count(t, len(all), 90*time.Second))
			report(t, tc.name+" paused under the stream", len(all), delivered, lost, dups, recovery, note+"; recovery = resume to ready")
		})
	}
}

// maxSeries is the largest value of a metric's series on the process.
func maxSeries(p *proc, name string) float64 {
	_, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.port))
	best := -1.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			best = max(best, v)
		}
	}
	return best
}

// TestReliabilityReplayKafkaStalled pauses (SIGSTOP) the broker process
// mid-replay for 15 s (30 s full size): a warning comes within
// write_timeout (3 s here) plus a moment, each warning line stays short (the
// 1,000 identical i/o timeouts of a batch are one summary), the replay says
// it makes no progress, and once the broker resumes every event arrives.
// Before, the first warning came after ~21 s and each was 80 KB.
func TestReliabilityReplayKafkaStalled(t *testing.T) {
	pause := time.Duration(size(15, 30)) * time.Second
	addr, pid, stop := startKfakeProcess(t, kfakeBinary(t))
	defer stop()
	dir := firehoseExport(t, 3000)
	cmd := exec.Command(consumerBinary(t), "replay", dir, "--brokers", addr, "--http-addr", "off", "--rate", "1000",
		"--progress-timeout", "4s", "--state", filepath.Join(t.TempDir(), "s.json"))
	cmd.Env = append(os.Environ(), "EVENTRELAY_LOG_FORMAT=json", "EVENTRELAY_SINK_KAFKA_WRITE_TIMEOUT=3s")
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	time.Sleep(1500 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGSTOP)
	paused := time.Now()
	testwait.Until(t, 10*time.Second, "a kafka write warning", func() bool { return strings.Contains(logs.String(), "kafka write failed") }, logs.String)
	warned := time.Since(paused)
	testwait.Until(t, 10*time.Second, "the replay stall warning", func() bool { return strings.Contains(logs.String(), "replay made no progress") }, logs.String)
	time.Sleep(time.Until(paused.Add(pause)))
	syscall.Kill(pid, syscall.SIGCONT)
	back := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("replay: %v\n%s", err, logs.String())
	}
	finished := time.Since(back)
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 2000 {
			t.Errorf("a log line of %d bytes: %.300s...", len(line), line)
		}
	}
	ids := map[string]bool{}
	recs := kafkatest.Kcat(t, []string{addr}, "events.onewelcome")
	for _, r := range recs {
		ids[r.Headers["event-id"]] = true
	}
	lost := 0
	for i := range 3000 {
		if !ids[fmt.Sprintf("tp-%05d", i)] {
			lost++
		}
	}
	report(t, "Kafka paused under a replay", 3000, len(ids), lost, len(recs)-len(ids), finished,
		fmt.Sprintf("paused %s; first warning after %s (write_timeout 3s), one summary line per failed batch; recovery = resume to replay finished (--rate 1000)", pause, warned.Round(100*time.Millisecond)))
}
