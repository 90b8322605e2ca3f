package poll

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events prometheus.Counter
	errors prometheus.Counter
	gaps   prometheus.Counter
	shifts prometheus.Counter
	cursor prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, vendor string) *metrics {
	l := prometheus.Labels{"api": vendor}
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_poll_events_total", Help: "Events delivered from a vendor API.", ConstLabels: l}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_poll_errors_total", Help: "Polls that failed.", ConstLabels: l}),
		gaps:   prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_poll_retention_gaps_total", Help: "Polls whose cursor was older than the API's retention (entries lost at the vendor).", ConstLabels: l}),
		shifts: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_poll_shifts_total", Help: "Entries seen to move or appear between two page requests of one poll (a merged Akeneo error log, a new entry); the pages were re-read, nothing skipped.", ConstLabels: l}),
		cursor: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventrelay_poll_cursor_timestamp_seconds", Help: "End of the last fully delivered window.", ConstLabels: l}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.errors, m.gaps, m.shifts, m.cursor)
	}
	return m
}
