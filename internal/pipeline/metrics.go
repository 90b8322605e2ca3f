package pipeline

import (
	"errors"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's series, shared by every source of a process
// and labelled by source. A nil *Metrics records nothing.
type Metrics struct {
	events       *prometheus.CounterVec
	dead         *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
	filteredN    *prometheus.CounterVec
	seconds      *prometheus.HistogramVec
}

// NewMetrics registers the pipeline's series with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_pipeline_events_total", Help: "Events delivered and acknowledged to their source, by source.",
		}, []string{"source"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_pipeline_dead_letters_total", Help: "Dead letters delivered and acknowledged to their source, by source.",
		}, []string{"source"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_pipeline_decode_errors_total", Help: "Records or events that failed to decode (sent to the dead-letter topic), by source and kind.",
		}, []string{"source", "kind"}),
		filteredN: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventrelay_pipeline_filtered_total", Help: "Events the source's filter dropped (outside a replay window, already delivered by a backfill), by source.",
		}, []string{"source"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eventrelay_pipeline_unit_seconds", Help: "Time from handing a unit to the pipeline to its acknowledgement, by source.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"source"}),
	}
	if reg != nil {
		// Every source of the process shares the series: registering again
		// (a backfill before the stream) reuses them.
		m.events = register(reg, m.events)
		m.dead = register(reg, m.dead)
		m.decodeErrors = register(reg, m.decodeErrors)
		m.filteredN = register(reg, m.filteredN)
		m.seconds = register(reg, m.seconds)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: two different series of one name
	}
	return c
}

func (m *Metrics) decodeError(source string, kind envelope.ErrorKind) {
	if m != nil {
		m.decodeErrors.WithLabelValues(source, string(kind)).Inc()
	}
}

func (m *Metrics) filtered(source string, n int) {
	if m != nil && n > 0 {
		m.filteredN.WithLabelValues(source).Add(float64(n))
	}
}

func (m *Metrics) acked(source string, b *sink.Batch, d time.Duration) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(source).Add(float64(len(b.Events)))
	m.dead.WithLabelValues(source).Add(float64(len(b.Dead)))
	m.seconds.WithLabelValues(source).Observe(d.Seconds())
}
