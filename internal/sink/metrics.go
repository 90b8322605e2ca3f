package sink

import "github.com/prometheus/client_golang/prometheus"

// metrics are the sink's Prometheus series; labels stay low-cardinality
// (source format, error kind), never topics or tenants.
type metrics struct {
	messages      *prometheus.CounterVec
	dead          *prometheus.CounterVec
	produceErrs   prometheus.Counter
	retries       prometheus.Counter
	topicsMissing prometheus.Counter
	batchSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_sink_messages_total", Help: "Events acknowledged by the sink, by source format.",
		}, []string{"source"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_sink_dlq_messages_total", Help: "Dead letters acknowledged by the sink, by source format and kind.",
		}, []string{"source", "kind"}),
		produceErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventrelay_sink_produce_errors_total", Help: "Failed Kafka produce attempts (each is retried or dead-lettered).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventrelay_sink_retries_total", Help: "Delivery attempts repeated after a failure.",
		}),
		topicsMissing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventrelay_sink_topic_missing_total", Help: "Deliveries stopped because a topic does not exist and was not created.",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventrelay_sink_batch_duration_seconds", Help: "Time from Deliver to acknowledgement of a batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.dead, m.produceErrs, m.retries, m.topicsMissing, m.batchSeconds)
	}
	return m
}

// acked counts a delivered batch.
func (m *metrics) acked(b *Batch) {
	for i := range b.Events {
		m.messages.WithLabelValues(string(b.Events[i].Source)).Inc()
	}
	for i := range b.Dead {
		m.dead.WithLabelValues(string(b.Dead[i].Format), b.Dead[i].Kind).Inc()
	}
}
