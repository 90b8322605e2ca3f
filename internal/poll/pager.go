package poll

import "time"

// Paging over a time window that changes while it is read.
//
// Paging by page number over a fixed window skips an entry whenever an
// entry before the read position leaves (an Akeneo error log merged into a
// later occurrence moves to that timestamp): every later entry shifts one
// position back and the one at the page boundary is never served. The
// pager instead continues each page from the boundary timestamp of the
// page before, inclusive (keyset paging), and drops repeats by id:
//
//   - ascending pages (oldest first): the next window is [last timestamp,
//     to]. An entry not yet served sorts after the page's last entry, so
//     its timestamp is at least the boundary, and timestamps only move
//     forward: it stays inside the next window until it is served, moved
//     or not. An entry served before that moves ahead comes back with its
//     new timestamp: a detected shift, delivered as an update.
//   - descending pages (newest first): the next window is [from, last
//     timestamp]. Entries can only move forward, into the part already
//     read; such an entry moved to its latest occurrence, which is recent,
//     and the next poll's window overlaps it.
//
// The order is taken from each page's own timestamps: the vendor does not
// document it. A full page whose entries all fall in one time step (the
// precision of the query) cannot move the boundary: that step becomes a
// block read by page number, re-read until a pass serves no new id, and
// the window is split around it. Every step either narrows a window or
// ends one, so a poll ends. Pages not sorted by time fall back to page
// numbers with the same re-reads.

// maxPasses bounds the reads of one block paged by number.
const maxPasses = 4

// window is a part of a poll's time range still to read.
type window struct {
	from, to time.Time
	// byPage pages by page number: a block of entries sharing one time
	// step, or a window whose pages are not sorted by time.
	byPage bool
	page   int
	// pass is the number of the current read of a byPage window; passIDs
	// are the ids it served, fresh how many were new to the poll.
	pass    int
	passIDs map[string]bool
	fresh   int
}

// pageEntry is one decoded entry of a page, in the order served.
type pageEntry struct {
	id string
	at time.Time
}

// shift is a change the pager saw between two page requests.
type shift struct {
	reason   string
	id       string
	from, to time.Time
}

// pager plans the page requests of one poll.
type pager struct {
	todo []*window
	step time.Duration
	// seen holds the ids served in this poll with their timestamp.
	seen   map[string]time.Time
	shifts []shift
	// unsorted is set once pages were found not sorted by time; warned
	// once that was logged.
	unsorted, warned bool
}

func newPager(from, to time.Time, step time.Duration) *pager {
	return &pager{todo: []*window{{from: from, to: to}}, step: step, seen: map[string]time.Time{}}
}

// current is the window to request next, nil when the poll is done.
func (pg *pager) current() *window {
	if len(pg.todo) == 0 {
		return nil
	}
	return pg.todo[len(pg.todo)-1]
}

// see sorts an entry of the page: keep is false for a repeat of an entry
// served earlier in this poll with the same timestamp (drop it); fresh is
// true for an id new to the poll. An id served before with another
// timestamp moved: a shift.
func (pg *pager) see(e pageEntry) (keep, fresh bool) {
	prev, ok := pg.seen[e.id]
	if ok && prev.Equal(e.at) {
		return false, false
	}
	if ok {
		w := pg.current()
		pg.shifts = append(pg.shifts, shift{reason: "an entry served earlier in this poll came back with another timestamp", id: e.id, from: w.from, to: w.to})
	}
	pg.seen[e.id] = e.at
	return true, !ok
}

// advance plans the next request from the page just served: its decoded
// entries in order, whether it was full, and how many ids were new to the
// poll.
func (pg *pager) advance(entries []pageEntry, full bool, fresh int) {
	w := pg.current()
	if w.byPage {
		pg.advanceByPage(w, entries, full, fresh)
		return
	}
	if !full {
		pg.pop()
		return
	}
	switch order(entries) {
	case ascending:
		if next := entries[len(entries)-1].at.Truncate(pg.step); next.After(w.from) {
			w.from = next
			return
		}
		pg.split(entries[len(entries)-1].at)
	case descending:
		if next := ceil(entries[len(entries)-1].at, pg.step); next.Before(w.to) {
			w.to = next
			return
		}
		pg.split(entries[len(entries)-1].at)
	case flat:
		pg.split(entries[0].at)
	default:
		pg.unsorted = true
		w.byPage, w.page, w.passIDs = true, 1, ids(entries)
	}
}

// split replaces the current window by the block of steps around at,
// read by page number, and what lies below and above it.
func (pg *pager) split(at time.Time) {
	w := pg.current()
	pg.pop()
	t := at.Truncate(pg.step)
	if below := t.Add(-pg.step); !below.Before(w.from) {
		pg.todo = append(pg.todo, &window{from: w.from, to: below})
	}
	if above := t.Add(pg.step); !above.After(w.to) {
		pg.todo = append(pg.todo, &window{from: above, to: w.to})
	}
	pg.todo = append(pg.todo, &window{from: maxTime(w.from, t.Add(-pg.step)), to: minTime(w.to, t.Add(pg.step)), byPage: true})
}

// advanceByPage pages on by number; after a short page, the window is read
// again until a pass serves no new id (a pass of one page is a snapshot).
func (pg *pager) advanceByPage(w *window, entries []pageEntry, full bool, fresh int) {
	if w.passIDs == nil {
		w.passIDs = map[string]bool{}
	}
	if len(entries) > 0 && w.passIDs[entries[0].id] {
		pg.shifts = append(pg.shifts, shift{reason: "a page started with an entry the page before served: entries were added before it", id: entries[0].id, from: w.from, to: w.to})
	}
	for _, e := range entries {
		w.passIDs[e.id] = true
	}
	if w.pass > 0 {
		w.fresh += fresh
	}
	if full {
		w.page++
		return
	}
	if w.pass > 0 && w.fresh > 0 {
		reason := "re-reading served entries the pass before missed: entries left before them"
		if w.pass+1 >= maxPasses {
			reason += "; giving up re-reading: an entry still missed comes with a later poll if it moved into its overlap"
		}
		pg.shifts = append(pg.shifts, shift{reason: reason, from: w.from, to: w.to})
	}
	if (w.pass == 0 && w.page == 0) || (w.pass > 0 && w.fresh == 0) || w.pass+1 >= maxPasses {
		pg.pop()
		return
	}
	w.pass, w.page, w.fresh, w.passIDs = w.pass+1, 0, 0, nil
}

func (pg *pager) pop() { pg.todo = pg.todo[:len(pg.todo)-1] }

type pageOrder int

const (
	unsorted pageOrder = iota
	ascending
	descending
	flat // one time step, or no order to tell
)

// order tells how a page's entries are sorted by time.
func order(entries []pageEntry) pageOrder {
	if len(entries) == 0 {
		return unsorted
	}
	up, down := true, true
	for i := 1; i < len(entries); i++ {
		up = up && !entries[i].at.Before(entries[i-1].at)
		down = down && !entries[i].at.After(entries[i-1].at)
	}
	switch {
	case up && down:
		return flat
	case up:
		return ascending
	case down:
		return descending
	}
	return unsorted
}

func ids(entries []pageEntry) map[string]bool {
	m := make(map[string]bool, len(entries))
	for _, e := range entries {
		m[e.id] = true
	}
	return m
}

func ceil(t time.Time, step time.Duration) time.Time {
	f := t.Truncate(step)
	if f.Equal(t) {
		return t
	}
	return f.Add(step)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
