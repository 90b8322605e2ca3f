package sink

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	meta "github.com/segmentio/kafka-go/protocol/metadata"
)

// metaMemo answers the kafka-go writer's partition-count lookups from a
// short memo. The writer asks its transport for the topic's metadata once
// per message (Writer.partitions); the transport answers from its own
// cache, but copies the response for each ask, which cost 3% of a replay's
// CPU and as many allocations as messages. A topic's answer is kept for
// ttl, and only when it names the topic without error, so a topic that is
// missing or being created is asked again every time, as before. Every
// other request passes through.
type metaMemo struct {
	kafka.RoundTripper
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	memo map[metaKey]metaAnswer
}

type metaKey struct {
	topic  string
	create bool // AllowAutoTopicCreation
}

type metaAnswer struct {
	res *meta.Response
	at  time.Time
}

// metaMemoTTL bounds how stale a memoized partition count can be: a topic
// given more partitions is written to all of them at most this much later.
const metaMemoTTL = time.Second

func newMetaMemo(t kafka.RoundTripper) *metaMemo {
	return &metaMemo{RoundTripper: t, ttl: metaMemoTTL, now: time.Now, memo: map[metaKey]metaAnswer{}}
}

// RoundTrip implements kafka.RoundTripper. The memoized response is shared:
// the writer only reads it.
func (m *metaMemo) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	r, ok := req.(*meta.Request)
	if !ok || len(r.TopicNames) != 1 {
		return m.RoundTripper.RoundTrip(ctx, addr, req)
	}
	key := metaKey{r.TopicNames[0], r.AllowAutoTopicCreation}
	now := m.now()
	m.mu.Lock()
	a, hit := m.memo[key]
	m.mu.Unlock()
	if hit && now.Sub(a.at) < m.ttl {
		return a.res, nil
	}
	res, err := m.RoundTripper.RoundTrip(ctx, addr, req)
	if err != nil {
		return res, err
	}
	if mr, ok := res.(*meta.Response); ok && len(mr.Topics) == 1 && mr.Topics[0].Name == key.topic && mr.Topics[0].ErrorCode == 0 {
		m.mu.Lock()
		m.memo[key] = metaAnswer{res: mr, at: now}
		m.mu.Unlock()
	}
	return res, nil
}
