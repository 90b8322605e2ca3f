package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// vendorKeys are object keys as the vendors name them: Firehose hour
// folders, fulfillmenttools day folders with numbered files, Infobip
// export names. Numbered and timestamped names differ in a few trailing
// characters, the case a weak hash spreads worst.
func vendorKeys(n int) map[string][]string {
	keys := map[string][]string{}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		h := start.Add(time.Duration(i/4) * time.Hour)
		keys["firehose"] = append(keys["firehose"], fmt.Sprintf("public/%s/onewelcome-events-1-%s-%08x", h.Format("2006/01/02/15"), h.Add(time.Duration(i%4)*15*time.Minute).Format("2006-01-02-15-04-05"), i*7919))
		keys["daily"] = append(keys["daily"], fmt.Sprintf("%s/%012d.json", start.AddDate(0, 0, i/64).Format("2006-01-02"), i%64))
		keys["infobip"] = append(keys["infobip"], fmt.Sprintf("req%d-events-%d-%d.json.gz", 1000+i/10, 1704067200+i*3600, 1704070799+i*3600))
	}
	return keys
}

// TestPartitionSpread: many vendor keys spread roughly evenly over the
// parts, for small and power-of-two part counts: no part more than 10%
// above or below the mean.
func TestPartitionSpread(t *testing.T) {
	for layout, keys := range vendorKeys(20000) {
		for _, n := range []int{2, 3, 4, 5, 8, 16} {
			counts := make([]int, n)
			for _, k := range keys {
				counts[PartOf(k, n)]++
			}
			mean := float64(len(keys)) / float64(n)
			for i, c := range counts {
				if d := float64(c)/mean - 1; d > 0.1 || d < -0.1 {
					t.Errorf("%s keys over %d parts: part %d has %d, mean %.0f (all: %v)", layout, n, i, c, mean, counts)
					break
				}
			}
		}
	}
}

// TestPartitionStable: an object's part depends on its key alone — not on
// the order the store lists it in nor on objects added since — and every
// key lands in exactly one part.
func TestPartitionStable(t *testing.T) {
	keys := vendorKeys(2000)["firehose"]
	const n = 3
	first := map[string]int{}
	for _, k := range keys {
		first[k] = PartOf(k, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	listing := append(append([]string{}, keys...), vendorKeys(3000)["firehose"][2000:]...) // new objects appeared
	rng.Shuffle(len(listing), func(i, j int) { listing[i], listing[j] = listing[j], listing[i] })
	for _, k := range listing {
		var in []int
		for i := range n {
			if (Partition{Index: i, Count: n}).Has(k) {
				in = append(in, i)
			}
		}
		if len(in) != 1 {
			t.Fatalf("%s is in parts %v, want exactly one", k, in)
		}
		if want, ok := first[k]; ok && in[0] != want {
			t.Errorf("%s moved from part %d to %d in another listing", k, want, in[0])
		}
	}
	if !(Partition{}).Has(keys[0]) || !(Partition{Index: 0, Count: 1}).Has(keys[0]) {
		t.Error("the whole replay (no partition, or 0/1) must have every object")
	}
}

// TestPartitionPinned pins the assignment to FNV-1a modulo n (the values
// computed apart from Go's hash/fnv): partitioned replays under way keep
// their state per part, so a change of PartOf would move objects between
// parts mid-replay (some sent twice, some never).
func TestPartitionPinned(t *testing.T) {
	for key, want := range map[string][2]int{
		"public/2024/02/01/09/export-1":             {0, 0},
		"public/2024/02/01/10/export-1":             {1, 1},
		"2024-02-01/000000000000.json":              {1, 0},
		"2024-02-02/000000000001.json":              {2, 0},
		"req1-events-1704067200-1704070799.json.gz": {2, 2},
		"": {2, 2},
	} {
		if got := [2]int{PartOf(key, 3), PartOf(key, 7)}; got != want {
			t.Errorf("%q: parts %v of 3 and 7, want %v", key, got, want)
		}
	}
}

func TestParsePartition(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == IndexEnv {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		spec, index string
		want        Partition
		err         string
	}{
		{spec: "", want: Partition{}},
		{spec: "0/1", want: Partition{0, 1}},
		{spec: "0/3", want: Partition{0, 3}},
		{spec: "2/3", want: Partition{2, 3}},
		{spec: "index/3", index: "1", want: Partition{1, 3}},
		{spec: "3/3", err: `"3/3": want i/n with 0 <= i < n`},
		{spec: "-1/3", err: "want i/n"},
		{spec: "1", err: "want i/n"},
		{spec: "1/0", err: "want i/n"},
		{spec: "a/3", err: "want i/n"},
		{spec: "01/3", err: "want i/n"},
		{spec: "1/3/4", err: "want i/n"},
		{spec: " 1/3", err: "want i/n"},
		{spec: "index/3", err: "$JOB_COMPLETION_INDEX is not set"},
		{spec: "index/3", index: "3", err: `"index/3" with $JOB_COMPLETION_INDEX="3": want i/n`},
		{spec: "index/x", index: "0", err: "want i/n"},
	} {
		p, err := ParsePartition(tc.spec, env(tc.index))
		switch {
		case tc.err == "" && (err != nil || p != tc.want):
			t.Errorf("%q (index %q): %v, %v; want %v", tc.spec, tc.index, p, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q (index %q): error %v, want one containing %q", tc.spec, tc.index, err, tc.err)
		}
	} // A Partition set on a Job directly is checked when the job plans.
	for p, ok := range map[Partition]bool{{}: true, {0, 1}: true, {2, 3}: true, {3, 3}: false, {-1, 3}: false, {1, 0}: false, {0, -2}: false} {
		if err := p.validate(); (err == nil) != ok {
			t.Errorf("Partition%v.validate() = %v", p, err)
		}
	}
	j := dirJob(t.TempDir(), NoState, io.Discard)
	j.Partition = Partition{3, 3}
	if _, err := j.Plan(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Errorf("a job of part 3/3 plans: %v, want ErrInvalid", err)
	}
}

// partJob is dirJob for part i of n, its state in the state directory
// under xdg (the default path, named after the replay).
func partJob(dir, xdg string, i, n int, log io.Writer) *Job {
	j := dirJob(dir, "", log)
	j.Partition = Partition{Index: i, Count: n}
	j.Getenv = func(k string) string {
		if k == "XDG_STATE_HOME" {
			return xdg
		}
		return ""
	}
	return j
}

// planned lists the objects a plan holds, as store/key.
func planned(t *testing.T, j *Job) []string {
	t.Helper()
	p, err := j.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, src := range p.Sources {
		for _, o := range src.Objects {
			ids = append(ids, src.Store.Name()+"/"+o.Key)
		}
	}
	return ids
}

// TestPartitionPlansCoverOnce: the parts' plans together hold every object
// of the whole replay's plan once; the dry-run lines of a part list its
// own objects only; and an object added to the export later joins one
// part without moving any other object.
func TestPartitionPlansCoverOnce(t *testing.T) {
	x := firehoseExport()
	dir := writeDir(t, x)
	xdg := t.TempDir()
	whole := planned(t, dirJob(dir, NoState, io.Discard))
	const n = 3
	part := map[string]int{}
	for i := range n {
		j := partJob(dir, xdg, i, n, io.Discard)
		objs := planned(t, j)
		if len(objs) < len(whole)/n/2 {
			t.Errorf("part %d/%d has %d of %d objects", i, n, len(objs), len(whole))
		}
		for _, o := range objs {
			if prev, ok := part[o]; ok {
				t.Errorf("%s is in parts %d and %d", o, prev, i)
			}
			part[o] = i
		}
		p, _ := j.Plan(context.Background())
		if lines := strings.Join(p.Lines, "\n"); strings.Count(lines, "\n") != len(objs) || !strings.Contains(lines, fmt.Sprintf("part %d/%d", i, n)) {
			t.Errorf("dry run of part %d/%d lists %d lines for %d objects:\n%s", i, n, strings.Count(lines, "\n"), len(objs), lines)
		}
	}
	if len(part) != len(whole) {
		t.Errorf("the parts hold %d objects, the whole replay %d", len(part), len(whole))
	}
	for _, o := range whole {
		if _, ok := part[o]; !ok {
			t.Errorf("%s is in no part", o)
		}
	}
	// New objects appear (the export grows) between one part's listing
	// and another's: the objects already there keep their parts.
	for h := range 10 {
		p := filepath.Join(dir, "public", "2024", "02", "01", fmt.Sprintf("%02d", h), fmt.Sprintf("late-%d", h))
		if err := os.WriteFile(p, []byte(`{"events":[]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		for _, o := range planned(t, partJob(dir, xdg, i, n, io.Discard)) {
			if prev, ok := part[o]; ok && prev != i {
				t.Errorf("%s moved from part %d to part %d after objects were added", o, prev, i)
			}
		}
	}
}

// TestPartitionRun: three parts run into one sink deliver every event of
// the window once; each keeps its own state file (the partition is part
// of the replay's identity), logs and metrics name the part; a rerun of a
// finished part sends nothing; a part given another part's state file is
// refused; a part with no objects succeeds.
func TestPartitionRun(t *testing.T) {
	x := firehoseExport()
	dir := writeDir(t, x)
	xdg := t.TempDir()
	m := &memSink{}
	const n = 3
	var logs [n]syncBuffer
	var states [n]string
	for i := range n {
		j := partJob(dir, xdg, i, n, &logs[i])
		reg := prometheus.NewRegistry()
		j.Registry = reg
		if _, err := returnsWithin(t, 20*time.Second, func() (Summary, error) { return j.Run(context.Background(), m) }); err != nil {
			t.Fatalf("part %d: %v\n%s", i, err, logs[i].String())
		}
		p, _ := j.Plan(context.Background())
		states[i], _ = j.StatePath(p)
		if !strings.Contains(logs[i].String(), fmt.Sprintf(`"partition":"%d/%d","objects":`, i, n)) {
			t.Errorf("part %d: no summary with the partition in the logs:\n%s", i, logs[i].String())
		}
		if got := metricLabel(t, reg, "eventrelay_replay_events_total", "partition"); got != fmt.Sprintf("%d/%d", i, n) {
			t.Errorf("part %d: eventrelay_replay_events_total{partition=%q}", i, got)
		}
	}
	m.checkOnce(t, x.idsIn(Window{}))
	if states[0] == states[1] || states[1] == states[2] || states[0] == states[2] || !strings.Contains(states[1], "part-1-of-3") {
		t.Errorf("state files %v: want one per part", states)
	}
	whole := dirJob(dir, "", io.Discard)
	whole.Getenv = partJob(dir, xdg, 0, n, io.Discard).Getenv
	p, _ := whole.Plan(context.Background())
	if path, _ := whole.StatePath(p); slices.Contains(states[:], path) {
		t.Errorf("the whole replay shares a part's state file %s", path)
	}

	before := len(m.ids)
	m.ids = nil
	rerun := partJob(dir, xdg, 1, n, io.Discard)
	if sum, err := rerun.Run(context.Background(), m); err != nil || sum.Events != 0 || len(m.ids) != 0 || sum.Skipped == 0 {
		t.Errorf("rerun of a finished part: %+v, %v, %d events delivered (of %d)", sum, err, len(m.ids), before)
	}
	other := partJob(dir, xdg, 1, n, io.Discard)
	other.State = states[0]
	if _, err := other.Run(context.Background(), m); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "belongs to another replay") {
		t.Errorf("part 1 with part 0's state file: %v, want it refused", err)
	}

	one := t.TempDir()
	src := "public/2024/02/01/09/eventrelay-export-1-2024-02-01-09-00-00-9"
	os.MkdirAll(filepath.Join(one, filepath.Dir(src)), 0o755)
	os.WriteFile(filepath.Join(one, src), x.objects[src], 0o644)
	m.ids = nil
	for i := range n {
		var log syncBuffer
		sum, err := partJob(one, xdg, i, n, &log).Run(context.Background(), m)
		if err != nil {
			t.Errorf("part %d of a one-object export: %+v, %v\n%s", i, sum, err, log.String())
		}
		if i != PartOf(src, n) && !strings.Contains(log.String(), "this part has no object") {
			t.Errorf("part %d of a one-object export: no word that it has no object:\n%s", i, log.String())
		}
	}
	if len(m.ids) != 6 {
		t.Errorf("the parts of a one-object export delivered %d events, want its 6", len(m.ids))
	}
}

// metricLabel is the value of label on the first series of the metric
// family name in reg.
func metricLabel(t *testing.T, reg *prometheus.Registry, name, label string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			if lp.GetName() == label {
				return lp.GetValue()
			}
		}
	}
	return ""
}
