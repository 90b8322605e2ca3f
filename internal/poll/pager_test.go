package poll

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// memAPI answers pages from entries held in memory, as an API would from
// its current state: entries in [from, to] at the query's precision,
// sorted by time (then id), page by number.
type memAPI struct {
	entries []pageEntry
	desc    bool
	shuffle bool // serve pages in no time order
	step    time.Duration
}

func (m *memAPI) page(from, to time.Time, page, size int) []pageEntry {
	from, to = from.Truncate(m.step), to.Truncate(m.step)
	var sel []pageEntry
	for _, e := range m.entries {
		if !e.at.Before(from) && !e.at.After(to) {
			sel = append(sel, e)
		}
	}
	sort.Slice(sel, func(i, j int) bool {
		if m.shuffle {
			return reverse(sel[i].id) < reverse(sel[j].id) // not in time order
		}
		if !sel[i].at.Equal(sel[j].at) {
			return sel[i].at.Before(sel[j].at) != m.desc
		}
		return sel[i].id < sel[j].id
	})
	start := min(page*size, len(sel))
	return sel[start:min(start+size, len(sel))]
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// drive pages one poll over m with the pager, calling change before each
// request; it fails the test beyond maxRequests.
func drive(t *testing.T, m *memAPI, from, to time.Time, size, maxRequests int, change func(req int)) (*pager, map[string]bool) {
	t.Helper()
	pg := newPager(from, to, m.step)
	served := map[string]bool{}
	for req := 1; pg.current() != nil; req++ {
		if req > maxRequests {
			t.Fatalf("more than %d requests: the pager does not end", maxRequests)
		}
		if change != nil {
			change(req)
		}
		w := pg.current()
		page := m.page(w.from, w.to, w.page, size)
		fresh := 0
		for _, e := range page {
			if keep, isNew := pg.see(e); keep && isNew {
				fresh++
			}
			served[e.id] = true
		}
		pg.advance(page, len(page) == size, fresh)
	}
	return pg, served
}

func TestPagerEnds(t *testing.T) {
	t0 := time.Date(2024, 11, 25, 12, 0, 0, 0, time.UTC)
	flat := func(n int) []pageEntry {
		var es []pageEntry
		for i := range n {
			es = append(es, pageEntry{id: fmt.Sprintf("e-%04d", i), at: t0.Add(-time.Hour)})
		}
		return es
	}
	spread := func(n int, every time.Duration) []pageEntry {
		var es []pageEntry
		for i := range n {
			es = append(es, pageEntry{id: fmt.Sprintf("e-%04d", i), at: t0.Add(-2 * time.Hour).Add(time.Duration(i) * every)})
		}
		return es
	}
	for _, tc := range []struct {
		name        string
		m           memAPI
		maxRequests int
	}{
		{"ascending", memAPI{entries: spread(1000, 7*time.Second), step: time.Second}, 30},
		{"descending", memAPI{entries: spread(1000, 7*time.Second), desc: true, step: time.Second}, 30},
		{"ascending/10 per second", memAPI{entries: spread(1000, 100*time.Millisecond), step: time.Millisecond}, 30},
		// one page, then two passes of 13 pages over the block, then the
		// windows below and above it
		{"one second, many pages", memAPI{entries: flat(500), step: time.Second}, 1 + 2*13 + 2},
		{"one second, many pages, descending", memAPI{entries: flat(500), desc: true, step: time.Second}, 1 + 2*13 + 2},
		{"unsorted", memAPI{entries: spread(500, 13*time.Second), shuffle: true, step: time.Second}, 2 * 13},
		{"empty", memAPI{step: time.Second}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, served := drive(t, &tc.m, t0.Add(-3*time.Hour), t0, 40, tc.maxRequests, nil)
			if len(served) != len(tc.m.entries) {
				t.Errorf("served %d of %d entries", len(served), len(tc.m.entries))
			}
		})
	}
}

// TestPagerUnderMerges moves random entries to a later time (never past
// to) and adds new ones between requests. Ascending: every entry present
// at the start is served. Descending: every entry that did not move is
// (a moved one lands in the part already read, for the next poll).
func TestPagerUnderMerges(t *testing.T) {
	t0 := time.Date(2024, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, desc := range []bool{false, true} {
		for seed := range uint64(30) {
			r := rand.New(rand.NewPCG(seed, 14))
			m := &memAPI{desc: desc, step: time.Second}
			for i := range 400 {
				// clumps: several entries often share a second
				m.entries = append(m.entries, pageEntry{id: fmt.Sprintf("e-%04d", i), at: t0.Add(-time.Hour).Add(time.Duration(i/(1+r.IntN(8))) * 9 * time.Second)})
			}
			present := map[string]bool{}
			for _, e := range m.entries {
				present[e.id] = true
			}
			moved := map[string]bool{}
			change := func(int) {
				for range r.IntN(3) {
					i := r.IntN(len(m.entries))
					at := m.entries[i].at.Add(time.Duration(1+r.IntN(300)) * time.Second)
					if at.Before(t0) {
						m.entries[i].at = at
						moved[m.entries[i].id] = true
					}
				}
				m.entries = append(m.entries, pageEntry{id: fmt.Sprintf("n-%04d", len(m.entries)), at: t0.Add(-time.Duration(r.IntN(3600)) * time.Second)})
			}
			pg, served := drive(t, m, t0.Add(-time.Hour), t0, 25, 2000, change)
			for id := range present {
				if !served[id] && !(desc && moved[id]) {
					t.Fatalf("desc=%v seed %d: %s present at the start, never served (moved: %v)", desc, seed, id, moved[id])
				}
			}
			if len(pg.todo) != 0 {
				t.Fatalf("windows left: %v", pg.todo)
			}
		}
	}
}
