package replay

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
)

// Layout is how a vendor arranges its export objects.
type Layout string

// The layouts.
const (
	LayoutAuto     Layout = "auto"
	LayoutFirehose Layout = "firehose" // OneWelcome: <category>/YYYY/MM/DD/HH/<file> (UTC hour)
	LayoutDaily    Layout = "daily"    // fulfillmenttools: YYYY-MM-DD/<file>
	LayoutInfobip  Layout = "infobip"  // <requestId>-events-<start>-<end>.json.gz
	LayoutFlat     Layout = "flat"     // every object under the prefix
)

// ParseLayout checks a layout name.
func ParseLayout(s string) (Layout, error) {
	switch l := Layout(strings.ToLower(s)); l {
	case "", LayoutAuto:
		return LayoutAuto, nil
	case LayoutFirehose, LayoutDaily, LayoutInfobip, LayoutFlat:
		return l, nil
	}
	return "", fmt.Errorf("unknown layout %q (want auto, firehose, daily, infobip or flat)", s)
}

// DefaultFormat is the event format a layout holds.
func (l Layout) DefaultFormat() envelope.Format {
	switch l {
	case LayoutFirehose:
		return envelope.FormatOneWelcome
	case LayoutDaily:
		return envelope.FormatFulfillmenttools
	case LayoutInfobip:
		return envelope.FormatInfobip
	}
	return envelope.FormatAuto
}

// Window is the replay's time range [From, To); a zero bound is open.
type Window struct {
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Contains reports whether t is inside the window.
func (w Window) Contains(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.To.IsZero() || t.Before(w.To))
}

// meets reports whether the half-open range [start, end) meets the window.
func (w Window) meets(start, end time.Time) bool {
	return (w.To.IsZero() || start.Before(w.To)) && (w.From.IsZero() || end.After(w.From))
}

func (w Window) String() string {
	b := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return "[" + b(w.From) + ", " + b(w.To) + ")"
}

// AutoLateness asks Plan for the layout's DefaultLateness.
const AutoLateness time.Duration = -1

// DefaultLateness is how long after an event occurred its object may still
// be filed under a later folder (or a later export's name range):
//   - firehose 1h: Firehose files an object under the UTC hour its oldest
//     record arrived, so an event of 10:59:59.8 can sit in the 11/ folder;
//   - daily 24h: likewise an event created at 23:59:59.9 can land in the
//     next day's folder;
//   - infobip 1h: the vendor does not say whether a name's range is the
//     events' time or their processing time, so be lenient;
//   - flat 0: every object is read anyway.
func (l Layout) DefaultLateness() time.Duration {
	switch l {
	case LayoutFirehose, LayoutInfobip:
		return time.Hour
	case LayoutDaily:
		return 24 * time.Hour
	}
	return 0
}

// hourHolds is the range of occurred_at a Firehose hour folder may hold:
// from late before the hour (events filed late) to the end of the next
// hour (a file opened in the hour buffers records arriving after it).
func hourHolds(h time.Time, late time.Duration) (time.Time, time.Time) {
	return h.Add(-late), h.Add(2 * time.Hour)
}

// dayHolds is the range of occurred_at a daily folder may hold: from late
// before the day to the end of the next day. The vendor does not say the
// folders are UTC days; a folder named after a local date west of UTC
// holds events of the next UTC day (seen: 22:00-02:00 filed under that
// day), so a replay also reads the day before its window.
func dayHolds(d time.Time, late time.Duration) (time.Time, time.Time) {
	return d.Add(-late), d.Add(48 * time.Hour)
}

// exportHolds is the range of occurred_at an Infobip export named for
// [start, end] (end included) may hold.
func exportHolds(start, end time.Time, late time.Duration) (time.Time, time.Time) {
	return start.Add(-late), end.Add(time.Nanosecond)
}

var (
	yearDir  = regexp.MustCompile(`^\d{4}/$`)
	dayDir   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}/$`)
	hourPath = regexp.MustCompile(`(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/`)
	dayPath  = regexp.MustCompile(`(?:^|/)(\d{4}-\d{2}-\d{2})/`)
	infobip  = regexp.MustCompile(`-events-([0-9TZtz:.+-]+?)-([0-9TZtz:.+-]+?)\.json(?:\.gz)?$`)
)

// Plan lists the objects a replay of prefix in window must read, and the
// layout it found (when asked for LayoutAuto). It lists only the folders
// that may hold events of the window: Firehose hours from one hour before
// From (a file sits in the hour of its oldest record) to late past To,
// fulfillmenttools days up to late past To, and Infobip exports whose
// names' time ranges, widened by late before their start, meet the window.
// late is how long after an event occurred it may be filed; AutoLateness
// takes the layout's DefaultLateness. Open windows are widened the same
// way. The runner then keeps exactly the events with w.Contains(occurred_at).
//
// A prefix without a trailing slash that is an object's whole key (the URL
// of one Firehose file, copied from a console) plans that object alone;
// otherwise a last part without a dot names a folder.
func Plan(ctx context.Context, s Store, prefix string, layout Layout, w Window, late time.Duration) (Layout, []Object, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		obj, found, err := exactObject(ctx, s, prefix)
		if err != nil {
			return "", nil, err
		}
		if found {
			if layout == LayoutAuto {
				layout = LayoutFlat
			}
			return layout, []Object{obj}, nil
		}
		if !strings.Contains(path.Base(prefix), ".") {
			prefix += "/"
		}
	}
	if layout == LayoutAuto {
		var err error
		if layout, err = detect(ctx, s, prefix); err != nil {
			return "", nil, err
		}
	}
	if late < 0 {
		late = layout.DefaultLateness()
	}
	var objs []Object
	collect := func(o Object) error { objs = append(objs, o); return nil }
	var err error
	switch layout {
	case LayoutFirehose:
		err = planFirehose(ctx, s, prefix, w, late, collect)
	case LayoutDaily:
		err = planDaily(ctx, s, prefix, w, late, collect)
	case LayoutInfobip:
		err = s.List(ctx, prefix, func(o Object) error {
			if !infobip.MatchString(path.Base(o.Key)) {
				return nil // not an export of this layout
			}
			if start, end, ok := infobipRange(o.Key); ok && !w.meets(exportHolds(start, end, late)) {
				return nil
			}
			return collect(o) // names whose times do not parse are read
		})
	default:
		err = s.List(ctx, prefix, collect)
	}
	return layout, objs, err
}

// errFirstSeen ends a listing after its first object.
var errFirstSeen = errors.New("first object seen")

// exactObject finds the object whose key is exactly key: keys are listed
// in order, so it is the first one listed under key, if any.
func exactObject(ctx context.Context, s Store, key string) (Object, bool, error) {
	var first Object
	err := s.List(ctx, key, func(o Object) error { first = o; return errFirstSeen })
	if err != nil && !errors.Is(err, errFirstSeen) {
		return Object{}, false, err
	}
	return first, err != nil && first.Key == key, nil
}

// detect guesses the layout from the folders and names under prefix.
func detect(ctx context.Context, s Store, prefix string) (Layout, error) {
	dirs, err := s.Dirs(ctx, prefix)
	if err != nil {
		return "", err
	}
	for _, d := range dirs {
		rel := strings.TrimPrefix(d, prefix)
		switch {
		case dayDir.MatchString(rel):
			return LayoutDaily, nil
		case yearDir.MatchString(rel):
			return LayoutFirehose, nil
		}
		sub, err := s.Dirs(ctx, d)
		if err != nil {
			return "", err
		}
		for _, sd := range sub {
			if yearDir.MatchString(strings.TrimPrefix(sd, d)) {
				return LayoutFirehose, nil
			}
		}
	}
	layout := LayoutFlat
	errStop := fmt.Errorf("stop")
	err = s.List(ctx, prefix, func(o Object) error {
		if infobip.MatchString(path.Base(o.Key)) {
			layout = LayoutInfobip
		}
		return errStop
	})
	if err != nil && err != errStop {
		return "", err
	}
	return layout, nil
}

// planFirehose lists <prefix>[<category>/]YYYY/MM/DD/HH/ folders.
func planFirehose(ctx context.Context, s Store, prefix string, w Window, late time.Duration, fn func(Object) error) error {
	dirs, err := s.Dirs(ctx, prefix)
	if err != nil {
		return err
	}
	categories := []string{prefix}
	if len(dirs) > 0 && !yearDir.MatchString(strings.TrimPrefix(dirs[0], prefix)) {
		categories = dirs
	}
	for _, cat := range categories {
		if w.From.IsZero() || w.To.IsZero() {
			// Open window: list everything and keep the hour folders that
			// may hold events in it (objects outside hour folders are not
			// of this layout, as with a closed window).
			err := s.List(ctx, cat, func(o Object) error {
				if h, ok := hourOf(o.Key); !ok || !w.meets(hourHolds(h, late)) {
					return nil
				}
				return fn(o)
			})
			if err != nil {
				return err
			}
			continue
		}
		end := w.To.Add(late)
		for h := w.From.UTC().Truncate(time.Hour).Add(-2 * time.Hour); h.Before(end); h = h.Add(time.Hour) {
			if !w.meets(hourHolds(h, late)) {
				continue
			}
			if err := s.List(ctx, cat+h.Format("2006/01/02/15/"), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// planDaily lists <prefix>YYYY-MM-DD/ folders.
func planDaily(ctx context.Context, s Store, prefix string, w Window, late time.Duration, fn func(Object) error) error {
	if w.From.IsZero() || w.To.IsZero() {
		return s.List(ctx, prefix, func(o Object) error {
			m := dayPath.FindStringSubmatch(strings.TrimPrefix(o.Key, prefix))
			if m == nil {
				return nil // not in a day folder: not of this layout
			}
			if d, err := time.Parse("2006-01-02", m[1]); err != nil || !w.meets(dayHolds(d, late)) {
				return nil
			}
			return fn(o)
		})
	}
	const day = 24 * time.Hour
	end := w.To.Add(late)
	for d := w.From.UTC().Truncate(day).Add(-day); d.Before(end); d = d.Add(day) {
		if !w.meets(dayHolds(d, late)) {
			continue
		}
		if err := s.List(ctx, prefix+d.Format("2006-01-02/"), fn); err != nil {
			return err
		}
	}
	return nil
}

func hourOf(key string) (time.Time, bool) {
	m := hourPath.FindStringSubmatch(key)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("2006010215", m[1]+m[2]+m[3]+m[4])
	return t, err == nil
}

// infobipRange reads the start and end times from an Infobip export name.
// The vendor does not document the time format; epoch seconds or
// milliseconds and compact or extended ISO-8601 are accepted.
func infobipRange(key string) (time.Time, time.Time, bool) {
	m := infobip.FindStringSubmatch(path.Base(key))
	if m == nil {
		return time.Time{}, time.Time{}, false
	}
	start, ok1 := parseNameTime(m[1])
	end, ok2 := parseNameTime(m[2])
	return start, end, ok1 && ok2
}

func parseNameTime(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e12 {
			return time.UnixMilli(n).UTC(), true
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{"20060102T150405Z", "20060102T150405", time.RFC3339, "2006-01-02T15:04:05", "20060102"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var ftBucket = regexp.MustCompile(`^(?:ocff-)?(.+)-[a-z0-9]+-public-events-export-bucket$`)

// TenantFromBucket derives the tenant from a fulfillmenttools export
// bucket name ({tenant}-{tier}-public-events-export-bucket), or "".
func TenantFromBucket(bucket string) string {
	if m := ftBucket.FindStringSubmatch(bucket); m != nil {
		return m[1]
	}
	return ""
}

// ParseTime reads a window bound: RFC 3339, or a UTC date or hour
// (2024-02-01, 2024-02-01T09).
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2024-02-01T09:00:00Z), a date (2024-02-01) or an hour (2024-02-01T09), UTC", s)
}

// ParseLateness reads a lateness setting: "auto" (or empty) is the
// layout's default (AutoLateness), otherwise a non-negative duration.
func ParseLateness(s string) (time.Duration, error) {
	if s == "" || s == "auto" {
		return AutoLateness, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%s: must not be negative", s)
	}
	return d, nil
}
