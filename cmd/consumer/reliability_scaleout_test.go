package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/sink"
)

// TestReliabilityReplayPartitions: a backfill split into parts run at once
// (as the pods of an Indexed Job), one part killed with SIGKILL mid-run and
// rerun: together the parts deliver every event of the export, repeats only
// from the killed part's objects in flight.
func TestReliabilityReplayPartitions(t *testing.T) {
	reliabilityOnly(t)
	parts, hours, files, envelopes := 3, 24, 2, 8
	if full() {
		parts, hours, files, envelopes = 8, 48, 4, 100
	}
	dir := t.TempDir()
	objs := partExportSized(hours, files, envelopes)
	for k, v := range objs {
		p := filepath.Join(dir, filepath.FromSlash(k))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	total := hours * files * envelopes * 5
	kc := kafkatest.Start(t, 1, 6, "events.onewelcome", "events.dlq")
	states := t.TempDir()
	env := hermeticEnv()
	bin := consumerBinary(t)
	args := func(i int, extra ...string) []string {
		return append([]string{"replay", dir, "--brokers", kc.Addrs[0], "--http-addr", "off", "--partition", fmt.Sprintf("%d/%d", i, parts),
			"--state", filepath.Join(states, fmt.Sprintf("part-%d.json", i))}, extra...)
	}
	killed := rand.IntN(parts)
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for i := range parts {
		if i == killed {
			continue
		}
		wg.Go(func() {
			code, out, err := execBin(bin, env, args(i)...)
			if err == nil && code != exitOK {
				err = fmt.Errorf("part %d: exit %d\n%s", i, code, out)
			}
			errs[i] = err
		})
	}
	// The killed part is slowed so that the kill lands mid-run.
	killOnceRecorded(t, env, args(killed, "--rate", "2000"), filepath.Join(states, fmt.Sprintf("part-%d.json", killed)), 60*time.Second)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if code, out, err := execBin(bin, env, args(killed)...); err != nil || code != exitOK {
		t.Fatalf("rerun of part %d: exit %d %v\n%s", killed, code, err, out)
	}
	recovery := time.Since(start)
	counts := map[string]int{}
	for _, r := range kafkatest.Kcat(t, kc.Addrs, "events.onewelcome") {
		counts[r.Headers[sink.HeaderEventID]]++
	}
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("pt-%05d", i)
	}
	delivered, lost, dups := tally(ids, counts)
	// Bound: the killed part's objects in flight (--concurrency 4, each
	// with up to 2 units of at most one object) are sent again.
	bound := 4 * envelopes * 5
	if dups > bound {
		t.Errorf("%d duplicates, above the bound of %d (objects in flight of the killed part)", dups, bound)
	}
	report(t, fmt.Sprintf("replay split in %d parts, one killed and rerun", parts), total, delivered, lost, dups, recovery,
		fmt.Sprintf("%d objects; duplicates bounded by the killed part's objects in flight = %d", len(objs), bound))
}

// TestReliabilityEnhancedFanOut: the worker reads by enhanced fan-out
// (subscriptions that expire every 2 s, as AWS's every 5 minutes) and is
// killed with SIGKILL while it drains; a second replica joins after the
// restart. Nothing is lost, the consumer is registered once.
func TestReliabilityEnhancedFanOut(t *testing.T) {
	reliabilityOnly(t)
	st := awstest.StartStack(t)
	fan := st.StartFanOut(t, awstest.FanOutOptions{SubscriptionDuration: 2 * time.Second})
	e := &relEnv{bin: consumerBinary(t), st: st, stream: "rel-efo"}
	e.kafka = kafkatest.Start(t, 1, 4, "events.onewelcome", "events.dlq")
	e.kc = createStream(t, st, e.stream, 4)
	ids := e.put(t, size(2000, 30000))
	kills := size(1, 5)
	efo := []string{"EVENTRELAY_SOURCE_KINESIS_ENHANCED_FAN_OUT=true", "EVENTRELAY_SOURCE_KINESIS_CONSUMER_NAME=relay-efo"}
	for range kills {
		p := e.start(t, "w1", efo...)
		time.Sleep(time.Duration(1500+rand.IntN(2000)) * time.Millisecond)
		p.kill9()
	}
	start := time.Now()
	e.start(t, "w1", efo...)
	e.start(t, "w2", efo...)
	counts := e.count(t, len(ids), 5*time.Minute)
	delivered, lost, dups := tally(ids, counts)
	consumers := map[string]bool{}
	for _, s := range fan.Subscriptions() {
		consumers[s.ConsumerARN] = true
	}
	if len(consumers) != 1 {
		t.Errorf("subscriptions from %d consumers, want the one relay-efo: %v", len(consumers), consumers)
	}
	bound := kills * 4 * 2 * 100 * 10 // kills x shards x batches in flight x max_records x events/record
	if dups > bound {
		t.Errorf("%d duplicates, above the bound of %d", dups, bound)
	}
	report(t, "enhanced fan-out, kill -9 while draining, a replica joins", len(ids), delivered, lost, dups, time.Since(start),
		fmt.Sprintf("%d kills; %d subscriptions of 2 s (renewed from their continuation); one consumer registered", kills, len(fan.Subscriptions())))
}
