package sink

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	meta "github.com/segmentio/kafka-go/protocol/metadata"
)

// countingTransport answers metadata requests itself, counting them: the
// topic "known" has 6 partitions, any other topic is unknown.
type countingTransport struct{ asked map[string]int }

func (c *countingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	r := req.(*meta.Request)
	res := &meta.Response{}
	for _, name := range r.TopicNames {
		c.asked[name]++
		t := meta.ResponseTopic{Name: name}
		if name == "known" {
			t.Partitions = make([]meta.ResponsePartition, 6)
		} else {
			t.ErrorCode = int16(kafka.UnknownTopicOrPartition)
		}
		res.Topics = append(res.Topics, t)
	}
	return res, nil
}

// TestMetaMemo: the writer's per-message lookups of one topic reach the
// transport once per metaMemoTTL; an unknown topic is asked every time
// (it may be being created), and a request for several topics (the sink's
// own checks) always passes through.
func TestMetaMemo(t *testing.T) {
	under := &countingTransport{asked: map[string]int{}}
	m := newMetaMemo(under)
	now := time.Unix(0, 0)
	m.now = func() time.Time { return now }
	ask := func(topics ...string) *meta.Response {
		res, err := m.RoundTrip(context.Background(), nil, &meta.Request{TopicNames: topics, AllowAutoTopicCreation: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.(*meta.Response)
	}
	for range 1000 {
		if res := ask("known"); len(res.Topics[0].Partitions) != 6 {
			t.Fatalf("answer %+v, want 6 partitions", res)
		}
		ask("missing")
	}
	if under.asked["known"] != 1 || under.asked["missing"] != 1000 {
		t.Errorf("transport asked %v, want known once and missing 1000 times", under.asked)
	}
	now = now.Add(metaMemoTTL)
	ask("known")
	ask("known", "other")
	if under.asked["known"] != 3 {
		t.Errorf("transport asked for known %d times, want 3 (once more after the TTL, once for the two-topic request)", under.asked["known"])
	}
}
