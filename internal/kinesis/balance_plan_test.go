package kinesis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestShares: the open shards divided among the live workers, floor or
// ceiling each; a worker capped below the level gets its cap and the
// others share the rest.
func TestShares(t *testing.T) {
	tests := []struct {
		open int
		caps []int // one per worker w1, w2, ...; 0: none
		want string
	}{
		{12, []int{0}, "12-12"},
		{12, []int{0, 0}, "6-6 6-6"},
		{12, []int{0, 0, 0}, "4-4 4-4 4-4"},
		{12, []int{0, 0, 0, 0, 0}, "2-3 2-3 2-3 2-3 2-3"},
		{12, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, strings.TrimSpace(strings.Repeat("0-1 ", 14))},
		{12, []int{2, 0, 0}, "2-2 5-5 5-5"},
		{12, []int{2, 3, 0}, "2-2 3-3 7-7"},
		{12, []int{5, 0}, "5-5 7-7"},
		{12, []int{7, 0}, "6-6 6-6"},
		{12, []int{4, 0, 0, 0, 0}, "2-3 2-3 2-3 2-3 2-3"},
		{12, []int{1, 1}, "1-1 1-1"},
		{0, []int{0, 0}, "0-0 0-0"},
	}
	for _, tc := range tests {
		v := view{open: tc.open, held: map[string]int{}, caps: map[string]int{}}
		for i, c := range tc.caps {
			v.held[workerName(i)] = 0
			v.caps[workerName(i)] = c
		}
		sh := v.shares()
		var got []string
		for i := range tc.caps {
			got = append(got, fmt.Sprintf("%d-%d", sh[workerName(i)].lo, sh[workerName(i)].hi))
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%d shards, caps %v: shares %s, want %s", tc.open, tc.caps, g, tc.want)
		}
	}
}

func workerName(i int) string { return fmt.Sprintf("w%02d", i+1) }

// TestBuildView: live workers are those with an unexpired heartbeat or
// lease, plus the reader; finished shards are not open; an expired lease,
// or a shard without a row, is free; the reader's leases come from what it
// knows, those it is giving up counted free.
func TestBuildView(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Second), now.Add(-time.Second)
	listed := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6"}
	leases := []leaseRow{
		{shard: "s0", owner: "a", until: later},
		{shard: "s1", owner: "a", until: later},
		{shard: "s2", owner: "dead", until: earlier}, // expired: free
		{shard: "s3", owner: "me", until: later},
		{shard: "s4", owner: "b", until: later, finished: true}, // SHARD_END: not open
		{shard: "gone", owner: "c", until: later},               // not listed: left the stream
		{shard: "s5", until: later},                             // released: free
		// s6 has no row yet: free
	}
	workers := []workerRow{{id: "idle", until: later, cap: 3}, {id: "old", until: earlier}, {id: "a", until: later}}
	v := buildView(now, listed, leases, workers, self{id: "me", held: 2, shedding: 1, cap: 5})
	want := view{open: 6, free: 4, held: map[string]int{"a": 2, "idle": 0, "me": 1}, caps: map[string]int{"idle": 3, "a": 0, "me": 5}}
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("view\n%+v, want\n%+v", v, want)
	}
}

// TestNoMovesWhenEven: in every spread of 12 shards over 1..6 workers with
// max - min <= 1 and nothing free, nobody sheds and nobody may take.
func TestNoMovesWhenEven(t *testing.T) {
	for workers := 1; workers <= 6; workers++ {
		lo := 12 / workers
		// Every assignment of lo or lo+1 to each worker summing to 12.
		for mask := range 1 << workers {
			v := view{open: 12, held: map[string]int{}, caps: map[string]int{}}
			sum := 0
			for i := range workers {
				n := lo + (mask >> i & 1)
				v.held[workerName(i)] = n
				sum += n
			}
			if sum != 12 {
				continue
			}
			for id, n := range v.held {
				if s := v.toShed(id); s != 0 {
					t.Errorf("%v: %s sheds %d", v.held, id, s)
				}
				if v.mayTake(id, n) {
					t.Errorf("%v: %s may take with nothing free", v.held, id)
				}
			}
		}
	}
}

// TestBalanceConverges simulates workers on 12 shards from uneven starts.
// Each round every worker (in random order) reads the table, gives up at
// most one lease (the highest shard id) as toShed says, and takes at most
// one free shard if mayTake allows — as the balancer and the KCL's loop
// do once per shard_sync_interval. With stale readings each worker decides
// from the previous round's table (its own leases excepted). The spread
// must even out (max - min <= 1, nothing free) with no more moves than the
// fewest possible, and then stay: no move in 50 more rounds.
func TestBalanceConverges(t *testing.T) {
	tests := []struct {
		name  string
		start []int // leases held per worker; the rest of 12 are free
		caps  []int
	}{
		{name: "one worker takes all", start: []int{0}},
		{name: "second joins", start: []int{12, 0}},
		{name: "third joins", start: []int{12, 0, 0}},
		{name: "third joins a balanced pair", start: []int{6, 6, 0}},
		{name: "fourth joins", start: []int{4, 4, 4, 0}},
		{name: "fifth joins", start: []int{3, 3, 3, 3, 0}},
		{name: "five from one", start: []int{12, 0, 0, 0, 0}},
		{name: "one of four left", start: []int{3, 3, 3}},
		{name: "one of three left", start: []int{4, 4}},
		{name: "uneven", start: []int{7, 4, 1}},
		{name: "all start together", start: []int{0, 0, 0}},
		{name: "capped newcomer", start: []int{12, 0, 0}, caps: []int{0, 0, 2}},
		{name: "capped incumbent", start: []int{3, 9}, caps: []int{3, 0}},
	}
	for _, stale := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/stale=%v", tc.name, stale), func(t *testing.T) {
				worst, worstRounds := 0, 0
				for seed := range uint64(20) {
					sim := newSim(tc.start, tc.caps, seed)
					rounds := sim.runUntilEven(t, 200, stale)
					worst, worstRounds = max(worst, sim.moves), max(worstRounds, rounds)
					if sim.moves > sim.fewest {
						t.Errorf("seed %d: %d moves from %v, the fewest possible is %d", seed, sim.moves, tc.start, sim.fewest)
					}
					moves := sim.moves
					for range 50 {
						sim.round(stale)
					}
					if sim.moves != moves {
						t.Fatalf("seed %d: %d moves after the spread evened out at %v (round %d)", seed, sim.moves-moves, sim.counts(), rounds)
					}
				}
				t.Logf("from %v: even within %d rounds, at most %d moves (the fewest possible: %d)", tc.start, worstRounds, worst, newSim(tc.start, tc.caps, 0).fewest)
			})
		}
	}
}

// sim is a lease table and the workers' decisions.
type sim struct {
	owner  []string // shard -> worker ("" free)
	caps   map[string]int
	ids    []string
	rng    *rand.Rand
	prev   []string // the table as of the last round (stale readings)
	moves  int
	fewest int
	last   []string // shard -> last owner
}

func newSim(start, caps []int, seed uint64) *sim {
	s := &sim{owner: make([]string, 12), caps: map[string]int{}, rng: rand.New(rand.NewPCG(seed, 7))}
	next := 0
	for i, n := range start {
		id := workerName(i)
		s.ids = append(s.ids, id)
		if i < len(caps) {
			s.caps[id] = caps[i]
		}
		for range n {
			s.owner[next] = id
			next++
		}
	}
	s.last = slices.Clone(s.owner)
	s.prev = slices.Clone(s.owner)
	s.fewest = fewestMoves(s.viewFrom(s.owner, s.ids[0]))
	return s
}

// fewestMoves: leases that must change hands to reach an even spread (the
// most loaded workers keep the larger shares).
func fewestMoves(v view) int {
	sh := v.shares()
	ids := v.workers()
	slices.SortStableFunc(ids, func(a, b string) int { return v.held[b] - v.held[a] })
	extra := v.open // shares above lo to hand out
	for _, id := range ids {
		extra -= sh[id].lo
	}
	moves := 0
	for _, id := range ids {
		target := sh[id].lo
		if extra > 0 && sh[id].hi > sh[id].lo {
			target, extra = sh[id].hi, extra-1
		}
		moves += max(v.held[id]-target, 0)
	}
	return moves
}

func (s *sim) viewFrom(owner []string, me string) view {
	v := view{open: len(owner), held: map[string]int{}, caps: map[string]int{}}
	for _, id := range s.ids {
		v.held[id] = 0
		v.caps[id] = s.caps[id]
	}
	for _, o := range owner {
		if o == "" || o == "-" { // free, or being given up
			v.free++
		} else {
			v.held[o]++
		}
	}
	return v
}

func (s *sim) held(id string) []int {
	var out []int
	for i, o := range s.owner {
		if o == id {
			out = append(out, i)
		}
	}
	return out
}

func (s *sim) round(stale bool) {
	order := slices.Clone(s.ids)
	s.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	table := s.owner
	if stale {
		table = s.prev
	}
	s.prev = slices.Clone(s.owner)
	var released []int
	for _, id := range order {
		v := s.viewFrom(table, id)
		v.held[id] = len(s.held(id)) // a worker knows its own leases
		if v.toShed(id) > 0 {
			mine := s.held(id)
			released = append(released, mine[len(mine)-1])
			s.owner[mine[len(mine)-1]] = "-" // being given up
		}
	}
	for _, i := range released {
		s.owner[i] = ""
	}
	for _, id := range order {
		v := s.viewFrom(table, id)
		n := len(s.held(id))
		if c := s.caps[id]; (c > 0 && n >= c) || !v.mayTake(id, n) {
			continue
		}
		for i, o := range s.owner {
			if o == "" {
				s.owner[i] = id
				if s.last[i] != "" && s.last[i] != id {
					s.moves++
				}
				s.last[i] = id
				break
			}
		}
	}
}

func (s *sim) counts() map[string]int {
	n := map[string]int{}
	for _, o := range s.owner {
		n[o]++
	}
	return n
}

func (s *sim) even() bool {
	v := s.viewFrom(s.owner, s.ids[0])
	if v.free > 0 {
		return false
	}
	sh := v.shares()
	for id, n := range v.held {
		if n < sh[id].lo || n > sh[id].hi {
			return false
		}
	}
	return true
}

func (s *sim) runUntilEven(t *testing.T, limit int, stale bool) int {
	t.Helper()
	for r := range limit {
		if s.even() {
			return r
		}
		s.round(stale)
	}
	t.Fatalf("not even after %d rounds: %v", limit, s.counts())
	return limit
}
