package kafkatest

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// javaMurmur2 are the vectors of Apache Kafka's own
// org.apache.kafka.common.utils.UtilsTest.testMurmur2: the hash the Java
// client places keyed records with.
var javaMurmur2 = []struct {
	key  string
	hash int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

func TestMurmur2MatchesJavaVectors(t *testing.T) {
	for _, v := range javaMurmur2 {
		if got := Murmur2([]byte(v.key)); got != v.hash {
			t.Errorf("Murmur2(%q) = %d, Java's UtilsTest says %d", v.key, got, v.hash)
		}
	}
}

// TestProducerPartitionsLikeJava: the balancer the sink uses
// (kafka-go's Murmur2Balancer) places every vector key on the partition the
// Java client computes from the vector: toPositive(hash) % n. Consumers
// co-partitioning with Java producers rely on it.
func TestProducerPartitionsLikeJava(t *testing.T) {
	b := &kafka.Murmur2Balancer{}
	for _, n := range []int{1, 2, 3, 6, 12, 50, 100} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for _, v := range javaMurmur2 {
			want := int((uint32(v.hash) & 0x7fffffff) % uint32(n))
			if got := b.Balance(kafka.Message{Key: []byte(v.key)}, parts...); got != want {
				t.Errorf("%d partitions: key %q on %d, the Java client puts it on %d", n, v.key, got, want)
			}
		}
	}
}
