package envelope

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// recycleSource is ~1.7 MB of OneWelcome envelopes (several read chunks),
// gzipped, with every event's raw JSON by id.
func recycleSource(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]string{}
	var b strings.Builder
	for l := range 1500 {
		b.WriteString(`{"events":[`)
		for e := range 1 + l%3 {
			id := fmt.Sprintf("e-%04d-%d", l, e)
			pad := make([]byte, 100+rng.IntN(700))
			for i := range pad {
				pad[i] = 'a' + byte(rng.IntN(26))
			}
			raw := fmt.Sprintf(`{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"a%d","tenantId":"t","occurredTime":"2024-02-01T09:00:00Z"},"payload":{"p":"%s"}}`, id, l%7, pad)
			want[id] = raw
			if e > 0 {
				b.WriteByte(',')
			}
			b.WriteString(raw)
		}
		b.WriteString("]}\n")
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(b.String()))
	zw.Close()
	return z.Bytes(), want
}

// TestReleaseKeepsUnacknowledgedEvents: with chunks recycled, an event's
// Raw stays intact until its value is released, however many values are
// read meanwhile (lag: the values in flight). The pool poisons what is
// released, so a chunk released too early shows as a changed event.
func TestReleaseKeepsUnacknowledgedEvents(t *testing.T) {
	src, want := recycleSource(t)
	d, err := NewDecoder(Options{Format: FormatOneWelcome})
	if err != nil {
		t.Fatal(err)
	}
	type value struct {
		events []Event
		end    int64
	}
	for _, lag := range []int{0, 1, 13, 150, 400, 900} {
		or, err := d.NewObjectReader(bytes.NewReader(src), "o.gz", 0)
		if err != nil {
			t.Fatal(err)
		}
		pool := &ChunkPool{Poison: true}
		or.Recycle(pool, func() uint64 { return 0 })
		var inFlight []value
		ack := func() {
			v := inFlight[0]
			inFlight = inFlight[1:]
			for _, e := range v.events {
				if string(e.Raw) != want[e.ID] {
					t.Fatalf("lag %d: event %s changed before its value was released: %.60q...", lag, e.ID, e.Raw)
				}
			}
			or.Release(v.end, len(inFlight) == 0 && v.end < 0)
		}
		seen := 0
		for {
			var res Result
			err := or.Next(&res)
			if err != nil {
				break
			}
			if len(res.Errors) > 0 {
				t.Fatalf("decode errors: %v", res.Errors[0])
			}
			seen += len(res.Events)
			inFlight = append(inFlight, value{res.Events, res.End})
			for len(inFlight) > lag {
				ack()
			}
		}
		for len(inFlight) > 0 {
			ack()
		}
		or.Release(or.fr.Offset(), true)
		reused, dropped := pool.Stats()
		if seen != len(want) || reused == 0 || dropped != 0 {
			t.Errorf("lag %d: %d of %d events, %d chunks reused, %d dropped; want all, some, none", lag, seen, len(want), reused, dropped)
		}
	}
}

// TestReleaseAfterFailureDrops: a chunk whose stamp changed while it was in
// use (a write failed meanwhile) is not reused.
func TestReleaseAfterFailureDrops(t *testing.T) {
	src, _ := recycleSource(t)
	d, _ := NewDecoder(Options{Format: FormatOneWelcome})
	or, err := d.NewObjectReader(bytes.NewReader(src), "o.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	pool := &ChunkPool{}
	failures := uint64(0)
	or.Recycle(pool, func() uint64 { return failures })
	var res Result
	for or.Next(&res) == nil {
		failures++ // a failed write while every chunk is in use
		or.Release(res.End, false)
	}
	or.Release(or.fr.Offset(), true)
	if reused, dropped := pool.Stats(); reused != 0 || dropped == 0 {
		t.Errorf("%d chunks reused, %d dropped; want none reused", reused, dropped)
	}
}
