package kinesis

import (
	"slices"
	"time"
)

// The balancing decisions, pure: what a worker may take and what it gives
// up, from one reading of the lease table (a view). Every worker decides
// from its own view alone, with the same rules, so that they agree without
// talking to each other:
//
//   - A fair share is lo = floor(open shards / live workers) or hi = lo+1;
//     a worker whose max_leases_for_worker is below the level gets its cap
//     and the rest is shared among the others (water-filling).
//   - Taking: below lo always; between lo and hi only the free shards that
//     the workers below lo do not need; at hi never.
//   - Shedding: only when the spread (max - min) is above one, and then
//     as many leases as the workers above hi hold beyond it, or as the
//     workers below lo need beyond the free shards, whichever is more.
//     They come from the workers furthest above their lo (ties: the lower
//     worker id), so every worker computes the same givers.
//
// In an even spread nobody is below lo and nothing is free: no rule moves
// a lease, so a converged group stays still (no thrash).

// view is the lease table as one worker read it.
type view struct {
	open int            // shards to read: listed by Kinesis and not finished (SHARD_END)
	free int            // open shards no live worker holds
	held map[string]int // live worker -> open shards it holds
	caps map[string]int // live worker -> its max_leases_for_worker (0 or absent: none)
}

// share is the number of leases a worker should hold: lo or hi.
type share struct{ lo, hi int }

// leaseRow is one shard's row of the lease table.
type leaseRow struct {
	shard    string
	owner    string
	until    time.Time // LeaseTimeout
	finished bool      // checkpointed SHARD_END
}

// workerRow is one worker's heartbeat row.
type workerRow struct {
	id    string
	until time.Time
	cap   int
}

// self is what a worker knows of itself better than the table does.
type self struct {
	id       string
	held     int // leases it holds
	shedding int // of them, being given up
	cap      int
}

// buildView reads the lease table at now: listed are the stream's shards.
// A worker is live while its heartbeat or one of its leases is unexpired;
// the worker itself always is. Its own holdings come from me: the leases
// it is giving up count as free already.
func buildView(now time.Time, listed []string, leases []leaseRow, workers []workerRow, me self) view {
	v := view{held: map[string]int{}, caps: map[string]int{}}
	rows := make(map[string]leaseRow, len(leases))
	for _, r := range leases {
		rows[r.shard] = r
	}
	for _, w := range workers {
		if w.until.After(now) {
			v.held[w.id] = 0 // live, whatever it holds (counted below)
			v.caps[w.id] = w.cap
		}
	}
	for _, shard := range listed {
		r := rows[shard]
		if r.finished {
			continue
		}
		v.open++
		switch {
		case r.owner == me.id && r.until.After(now):
			// counted from me below
		case r.owner != "" && r.until.After(now):
			v.held[r.owner]++
		default:
			v.free++
		}
	}
	v.held[me.id] = max(me.held-me.shedding, 0)
	v.caps[me.id] = me.cap
	v.free += me.shedding
	return v
}

// workers are the live workers in id order.
func (v view) workers() []string {
	ids := make([]string, 0, len(v.held))
	for id := range v.held {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// shares divides the open shards among the live workers.
func (v view) shares() map[string]share {
	out := map[string]share{}
	rest, remaining := v.workers(), v.open
	for changed := true; changed && len(rest) > 0; {
		changed = false
		level := remaining / len(rest)
		kept := rest[:0:0]
		for _, id := range rest {
			if c := v.caps[id]; c > 0 && c <= level {
				out[id] = share{c, c}
				remaining -= c
				changed = true
				continue
			}
			kept = append(kept, id)
		}
		rest = kept
	}
	for _, id := range rest {
		lo := remaining / len(rest)
		hi := lo
		if remaining%len(rest) > 0 {
			hi++
		}
		if c := v.caps[id]; c > 0 {
			hi = min(hi, c)
		}
		out[id] = share{lo, hi}
	}
	return out
}

// surplus is how many leases the workers hold beyond hi.
func (v view) surplus(sh map[string]share) int {
	n := 0
	for id, held := range v.held {
		n += max(held-sh[id].hi, 0)
	}
	return n
}

// deficit is how many leases the workers other than skip lack to reach lo.
func (v view) deficit(sh map[string]share, skip string) int {
	d := 0
	for id, n := range v.held {
		if id != skip {
			d += max(sh[id].lo-n, 0)
		}
	}
	return d
}

// spread is max - min of the holdings.
func (v view) spread() int {
	lo, hi, first := 0, 0, true
	for _, n := range v.held {
		if first {
			lo, hi, first = n, n, false
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	return hi - lo
}

// mayTake reports whether worker id, holding n leases, may take one more.
func (v view) mayTake(id string, n int) bool {
	sh := v.shares()
	my, ok := sh[id]
	if !ok {
		return true // not in the view: fall back to the library's rule
	}
	switch {
	case n >= my.hi:
		return false
	case n < my.lo:
		return true
	default:
		return v.free > v.deficit(sh, id)
	}
}

// toShed is how many leases worker id should give up now.
func (v view) toShed(id string) int {
	if v.spread() <= 1 {
		return 0
	}
	sh := v.shares()
	need := max(v.surplus(sh), v.deficit(sh, "")-v.free)
	if need <= 0 {
		return 0
	}
	excess := map[string]int{}
	for w, n := range v.held {
		if e := n - sh[w].lo; e > 0 {
			excess[w] = e
		}
	}
	ids := v.workers()
	mine := 0
	for range need {
		best := ""
		for _, w := range ids {
			if excess[w] > 0 && (best == "" || excess[w] > excess[best]) {
				best = w
			}
		}
		if best == "" {
			break
		}
		excess[best]--
		if best == id {
			mine++
		}
	}
	return mine
}
