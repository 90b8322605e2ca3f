package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/rs/zerolog"
)

// lateVendor is how a vendor files events, as its documentation says, with
// events filed late near the folder boundaries.
type lateVendor struct {
	layout Layout
	unit   time.Duration // a folder's (or an export name's) time span
	units  int           // how many units the export covers
	export func(rng *rand.Rand, v lateVendor) exportSet
}

// lateVendors: the four layouts. Each places, near every unit boundary B,
// events that occurred just before B in B's folder, the case the brief and
// the vendors' docs describe.
func lateVendors() []lateVendor {
	return []lateVendor{
		{LayoutFirehose, time.Hour, 8, firehoseLate},
		{LayoutDaily, 24 * time.Hour, 5, dailyLate},
		{LayoutInfobip, 6 * time.Hour, 6, infobipLate},
		{LayoutFlat, time.Hour, 8, flatLate},
	}
}

// lateBy is how long after it occurred an event is filed: milliseconds,
// seconds or minutes, below limit (the layout's default lateness).
func lateBy(rng *rand.Rand, limit time.Duration) time.Duration {
	d := []time.Duration{time.Duration(1+rng.IntN(999)) * time.Millisecond,
		time.Duration(1+rng.IntN(59)) * time.Second,
		time.Duration(1+rng.IntN(59)) * time.Minute}[rng.IntN(3)]
	return min(d, limit-time.Millisecond)
}

func within(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d/time.Millisecond))) * time.Millisecond
}

// lateFiles builds, for every unit start U, a file of events inside the
// unit, and a file of events that occurred before U but were filed under U.
func lateFiles(rng *rand.Rand, v lateVendor, limit time.Duration, add func(folder time.Time, file string, times []time.Time)) {
	for u := range v.units + 1 {
		start := day1.Add(time.Duration(u) * v.unit)
		var inside, late []time.Time
		for range 3 {
			inside = append(inside, start.Add(within(rng, v.unit)))
			late = append(late, start.Add(-lateBy(rng, limit)))
		}
		if u < v.units {
			add(start, "a", inside)
		}
		add(start, "late", late)
	}
}

// oneWelcomeLine is a Firehose JSON line of one OneWelcome envelope
// (seed 004: occurredTime ISO 8601 with offset, up to 6 fraction digits).
func oneWelcomeLine(id string, t time.Time) string {
	return fmt.Sprintf(`{"events":[{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"agg","tenantId":"t1","occurredTime":"%s"},"payload":{}}]}`+"\n",
		id, t.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000-07:00"))
}

// firehoseLate: OneWelcome via Firehose files an object under the UTC hour
// its oldest record arrived (seed 004), so an event of 10:59:59.8 arriving
// at 11:00:00.1 sits in 11/, and a file opened at 10:58 also holds records
// of 11:00-11:03.
func firehoseLate(rng *rand.Rand, v lateVendor) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	add := func(folder time.Time, file string, times []time.Time) {
		var body strings.Builder
		for _, t := range times {
			id := fmt.Sprintf("ow-%04d", len(x.times))
			x.times[id] = t
			body.WriteString(oneWelcomeLine(id, t))
		}
		x.objects[fmt.Sprintf("public/%s/export-%s", folder.Format("2006/01/02/15"), file)] = gz([]byte(body.String()))
	}
	lateFiles(rng, v, time.Hour, add)
	for h := range v.units {
		next := day1.Add(time.Duration(h+1) * time.Hour)
		add(next.Add(-time.Hour), "buffered", []time.Time{next.Add(-within(rng, 5*time.Minute)), next.Add(within(rng, 4*time.Minute))})
	}
	return x
}

// dailyLate: fulfillmenttools files YYYY-MM-DD/ folders (seed 000); an
// event created at 23:59:59.9 can land in the next day's folder, and the
// vendor does not say the folders are UTC days: one named after a local
// date west of UTC holds the first hours of the next UTC day (an event
// created 22:00-02:00 filed under its local date).
func dailyLate(rng *rand.Rand, v lateVendor) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	n := 0
	add := func(folder time.Time, file string, times []time.Time) {
		var body bytes.Buffer
		for _, t := range times {
			id := fmt.Sprintf("ft-%04d", len(x.times))
			x.times[id] = t
			fmt.Fprintf(&body, `{"id":"%s","eventName":"order-created_event-v1","payload":{"id":"o-%s"},"created":"%s"}`+"\n", id, id, t.Format("2006-01-02T15:04:05.000000+00:00"))
		}
		x.objects[fmt.Sprintf("%s/%012d.json.gz", folder.Format("2006-01-02"), n)] = gz(body.Bytes())
		n++
	}
	lateFiles(rng, v, 24*time.Hour, add)
	for d := range v.units {
		next := day1.Add(time.Duration(d+1) * 24 * time.Hour)
		add(next.Add(-24*time.Hour), "local", []time.Time{next.Add(within(rng, 10*time.Hour))})
	}
	return x
}

// infobipLate: Infobip names exports <requestId>-events-<start>-<end>.json.gz
// (seed 001); whether the range is the events' time or the export's is not
// documented, so an export may hold events from just before its start.
func infobipLate(rng *rand.Rand, v lateVendor) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	n := 0
	lateFiles(rng, v, time.Hour, func(start time.Time, _ string, times []time.Time) {
		var body bytes.Buffer
		for _, t := range times {
			id := fmt.Sprintf("ib-%04d", len(x.times))
			x.times[id] = t
			fmt.Fprintf(&body, `{"eventId":"%s","definitionId":"purchase","personId":"p","externalPersonId":"x","timestamp":"%s","properties":{}}`+"\n", id, t.Format("2006-01-02T15:04:05.000-0700"))
		}
		x.objects[fmt.Sprintf("exports/req%d-events-%s-%s.json.gz", n, start.Format("20060102T150405Z"), start.Add(v.unit).Format("20060102T150405Z"))] = gz(body.Bytes())
		n++
	})
	return x
}

// flatLate: objects with no time in their names; every one is read.
func flatLate(rng *rand.Rand, v lateVendor) exportSet {
	x := exportSet{objects: map[string][]byte{}, times: map[string]time.Time{}}
	n := 0
	lateFiles(rng, v, time.Hour, func(_ time.Time, _ string, times []time.Time) {
		var body strings.Builder
		for _, t := range times {
			id := fmt.Sprintf("fl-%04d", len(x.times))
			x.times[id] = t
			body.WriteString(oneWelcomeLine(id, t))
		}
		x.objects[fmt.Sprintf("flat/part-%04d.json", n)] = []byte(body.String())
		n++
	})
	return x
}

// randomCuts returns 3 to 6 increasing cut points over the export's span:
// unit boundaries, boundaries moved by up to 5s, or any millisecond. The
// first and the last are sometimes open (zero).
func randomCuts(rng *rand.Rand, v lateVendor) []time.Time {
	seen := map[time.Time]bool{}
	var cuts []time.Time
	n := 3 + rng.IntN(4)
	for try := 0; len(cuts) < n && try < 100; try++ {
		b := day1.Add(time.Duration(rng.IntN(v.units+1)) * v.unit)
		var c time.Time
		switch rng.IntN(3) {
		case 0:
			c = b
		case 1:
			c = b.Add(within(rng, 10*time.Second) - 5*time.Second)
		default:
			c = day1.Add(within(rng, time.Duration(v.units)*v.unit))
		}
		if !seen[c] {
			seen[c] = true
			cuts = append(cuts, c)
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].Before(cuts[j]) })
	if rng.IntN(4) == 0 {
		cuts[0] = time.Time{}
	}
	if rng.IntN(4) == 0 {
		cuts[len(cuts)-1] = time.Time{}
	}
	return cuts
}

// replayIDs replays store in w with the layout's default lateness into the
// stdout sink and counts the event ids it printed.
func replayIDs(t *testing.T, store Store, layout Layout, w Window) map[string]int {
	t.Helper()
	ctx := context.Background()
	found, objs, err := Plan(ctx, store, "", layout, w, AutoLateness)
	if err != nil {
		t.Fatal(err)
	}
	state, err := LoadState("", nil, w, false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := NewRunner(Options{Window: w, Tenant: "acme", Concurrency: 2, BatchSize: 5}, sink.NewStdout(&out, nil), state, zerolog.Nop())
	if _, err := r.Run(ctx, []Source{{Store: store, Objects: objs, Format: found.DefaultFormat()}}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for line := range strings.Lines(out.String()) {
		var e struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.ID == "" {
			t.Fatalf("not an event: %s (%v)", line, err)
		}
		ids[e.ID]++
	}
	return ids
}

// diffIDs describes how got differs from want (each id once), or "".
func diffIDs(x exportSet, got map[string]int, want map[string]bool) string {
	var missing, extra []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id+"@"+x.times[id].Format("01-02T15:04:05.000"))
		}
	}
	for id, n := range got {
		if !want[id] || n > 1 {
			extra = append(extra, fmt.Sprintf("%s@%s(x%d)", id, x.times[id].Format("01-02T15:04:05.000"), n))
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("missing %d %v; unexpected or repeated %d %v", len(missing), head(missing), len(extra), head(extra))
}

// TestChunkedReplaysEqualOneReplay: for random cut points (seeded), the
// replays of consecutive windows [c0,c1), [c1,c2), ... together deliver
// exactly the events one replay of [c0,cn) delivers, each once, and that
// replay delivers exactly the events with c0 <= occurred_at < cn — per
// layout, with events filed in the next folder (or export) near every
// boundary, as the vendors file them.
func TestChunkedReplaysEqualOneReplay(t *testing.T) {
	for i, v := range lateVendors() {
		t.Run(string(v.layout), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(14, uint64(i)))
			x := v.export(rng, v)
			store := DirStore{Root: writeDir(t, x)}
			for trial := range 12 {
				cuts := randomCuts(rng, v)
				whole := Window{From: cuts[0], To: cuts[len(cuts)-1]}
				one := replayIDs(t, store, v.layout, whole)
				if d := diffIDs(x, one, x.idsIn(whole)); d != "" {
					t.Errorf("trial %d: one replay of %s: %s", trial, whole, d)
				}
				union := map[string]int{}
				for j := 1; j < len(cuts); j++ {
					for id, n := range replayIDs(t, store, v.layout, Window{From: cuts[j-1], To: cuts[j]}) {
						union[id] += n
					}
				}
				want := map[string]bool{}
				for id := range one {
					want[id] = true
				}
				if d := diffIDs(x, union, want); d != "" {
					t.Errorf("trial %d: chunks %v against one replay: %s", trial, cuts, d)
				}
			}
		})
	}
}
