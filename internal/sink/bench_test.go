package sink

import (
	"context"
	"sync"
	"testing"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
)

// BenchmarkKafkaDeliver produces 1 KiB events to a local kfake broker
// (in-process, 6 partitions) in batches of 1000 from 4 concurrent callers,
// as 4 shards would; each op is one event.
func BenchmarkKafkaDeliver(b *testing.B) {
	for _, comp := range []string{"none", "lz4"} {
		b.Run(comp, func(b *testing.B) {
			c := kafkatest.Start(b, 1, 6, "events.onewelcome", "events.dlq")
			k, _ := newTestKafka(b, c.Addrs, func(cfg *KafkaConfig) { cfg.Compression = comp })
			evs := testEvents(4000, 400, 1024-230)
			size := 0
			for _, e := range evs {
				size += len(e.Raw)
			}
			b.SetBytes(int64(size / len(evs)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / 4
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var batch Batch
					for sent := 0; sent < per; {
						batch.Reset()
						n := min(1000, per-sent)
						batch.Events = append(batch.Events, evs[w*1000:w*1000+n]...)
						if err := k.Deliver(context.Background(), &batch); err != nil {
							b.Error(err)
							return
						}
						sent += n
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*4)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
