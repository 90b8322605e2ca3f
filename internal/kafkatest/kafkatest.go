// Package kafkatest starts real-protocol Kafka brokers (franz-go's kfake)
// on 127.0.0.1 for tests, and reads topics back with independent clients:
// franz-go's kgo and, when installed, kcat (librdkafka).
package kafkatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testnet"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a kfake cluster that can be stopped and restarted on the same
// ports with its data kept, like a broker outage.
type Cluster struct {
	*kfake.Cluster
	Addrs []string
	ports []int
	opts  []kfake.Opt
}

// Start starts brokers brokers with topics seeded at partitions partitions,
// persisted in a temporary directory, and closes them when the test ends.
// The brokers create a topic a client asks for (auto.create.topics.enable,
// Kafka's default).
func Start(t testing.TB, brokers int, partitions int32, topics ...string) *Cluster {
	t.Helper()
	return start(t, true, brokers, partitions, topics)
}

// StartStrict is Start with auto-creation disabled on the brokers
// (auto.create.topics.enable=false): only the seeded topics exist.
func StartStrict(t testing.TB, brokers int, partitions int32, topics ...string) *Cluster {
	t.Helper()
	return start(t, false, brokers, partitions, topics)
}

func start(t testing.TB, autoCreate bool, brokers int, partitions int32, topics []string) *Cluster {
	t.Helper()
	ports := testnet.FreePorts(t, brokers)
	c := &Cluster{ports: ports}
	for _, p := range ports {
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	c.opts = []kfake.Opt{
		kfake.NumBrokers(brokers), kfake.Ports(ports...), kfake.DataDir(t.TempDir()), kfake.SyncWrites(),
		kfake.DefaultNumPartitions(int(partitions)),
	}
	if autoCreate {
		c.opts = append(c.opts, kfake.AllowAutoTopicCreation())
	}
	if len(topics) > 0 {
		c.opts = append(c.opts, kfake.SeedTopics(partitions, topics...))
	}
	c.start(t)
	t.Cleanup(func() {
		if c.Cluster != nil {
			c.Cluster.Close()
		}
	})
	return c
}

func (c *Cluster) start(t testing.TB) {
	t.Helper()
	var err error
	for range 50 { // the ports of a just-closed cluster can take a moment to free
		if c.Cluster, err = kfake.NewCluster(c.opts...); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting kfake: %v", err)
}

// Stop closes every broker; Restart brings them back with their data.
func (c *Cluster) Stop() {
	c.Cluster.Close()
	c.Cluster = nil
}

// Restart starts the brokers again on the same ports.
func (c *Cluster) Restart(t testing.TB) { c.start(t) }

// Record is a message read back from Kafka.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// Consume reads topic from the beginning with franz-go until want records
// arrived or timeout passed.
func Consume(t testing.TB, addrs []string, topic string, want int, timeout time.Duration) []Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []Record
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			out = append(out, Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h})
		})
	}
	return out
}

// KcatPath returns kcat's path. Where EVENTRELAY_REQUIRE_KCAT is set (CI
// sets it) a missing kcat fails the test; elsewhere it skips it.
func KcatPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("EVENTRELAY_REQUIRE_KCAT") != "" {
			t.Fatalf("kcat is required (EVENTRELAY_REQUIRE_KCAT is set) but not installed: %v", err)
		}
		t.Skip("kcat not installed (apt-get install -y kcat); CI installs it")
	}
	return p
}

// Kcat reads every record of topic with kcat (librdkafka), an independent
// client, and exits at the end of the partitions.
func Kcat(t testing.TB, addrs []string, topic string) []Record {
	t.Helper()
	bin := KcatPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", "-b", addrs[0], "-t", topic, "-o", "beginning", "-e", "-q", "-J")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	var recs []Record
	dec := json.NewDecoder(bytesReader(out))
	for dec.More() {
		var m struct {
			Topic     string   `json:"topic"`
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Key       *string  `json:"key"`
			Payload   *string  `json:"payload"`
			Headers   []string `json:"headers"`
		}
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("parsing kcat output: %v", err)
		}
		r := Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Headers: map[string]string{}}
		if m.Key != nil {
			r.Key = []byte(*m.Key)
		}
		if m.Payload != nil {
			r.Value = []byte(*m.Payload)
		}
		if len(m.Headers)%2 != 0 {
			t.Fatalf("odd kcat header list %v", m.Headers)
		}
		for i := 0; i < len(m.Headers); i += 2 {
			r.Headers[m.Headers[i]] = m.Headers[i+1]
		}
		recs = append(recs, r)
	}
	return recs
}

// KcatValues reads every record of topic with kcat and returns the values
// exactly as stored, by partition and offset. Unlike Kcat (-J, where values
// pass through kcat's JSON string encoding), the payload bytes are printed
// unchanged after their length, so a byte-for-byte comparison is honest.
func KcatValues(t testing.TB, addrs []string, topic string) map[[2]int64][]byte {
	t.Helper()
	bin := KcatPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", "-b", addrs[0], "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %S\n%s")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	vals := map[[2]int64][]byte{}
	for len(out) > 0 {
		head, rest, ok := bytes.Cut(out, []byte("\n"))
		var p, o, n int64
		if _, err := fmt.Sscanf(string(head), "%d %d %d", &p, &o, &n); !ok || err != nil || n > int64(len(rest)) {
			t.Fatalf("parsing kcat output at %q: %v", head, err)
		}
		if n < 0 {
			vals[[2]int64{p, o}] = nil
			n = 0
		} else {
			vals[[2]int64{p, o}] = rest[:n:n]
		}
		out = rest[n:]
	}
	return vals
}

// Murmur2Partition is the Java client's default partitioner for a keyed
// record (toPositive(murmur2(key)) % partitions), written from the Java
// source so tests check it independently.
func Murmur2Partition(key []byte, partitions int) int32 {
	return int32((uint32(Murmur2(key)) & 0x7fffffff) % uint32(partitions))
}

// Murmur2 is org.apache.kafka.common.utils.Utils.murmur2.
func Murmur2(key []byte) int32 {
	const seed, m, r = 0x9747b28c, 0x5bd1e995, 24
	n := len(key)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	rest := key[n&^3:]
	switch len(rest) {
	case 3:
		h ^= uint32(rest[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(rest[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(rest[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// String describes a record for failure messages.
func (r Record) String() string {
	return fmt.Sprintf("%s/%d@%d key=%q", r.Topic, r.Partition, r.Offset, r.Key)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// CreateTopic creates topic with partitions partitions, as an operator
// would with kafka-topics.sh --create.
func CreateTopic(t testing.TB, addrs []string, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}
