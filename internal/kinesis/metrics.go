package kinesis

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"
	"github.com/vmware/vmware-go-kcl-v2/logger"
)

type metrics struct {
	records        prometheus.Counter
	events         prometheus.Counter
	checkpoints    prometheus.Counter
	behind         *prometheus.GaugeVec
	leases         prometheus.Gauge
	deliverSeconds prometheus.Histogram
	suppressed     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records:     prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_kinesis_records_total", Help: "Kinesis records delivered and checkpointed."}),
		events:      prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_kinesis_events_total", Help: "Events delivered from Kinesis records."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventrelay_kinesis_checkpoints_total", Help: "Checkpoints written to the lease table."}),
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventrelay_kinesis_behind_latest_seconds", Help: "How far the last read of each shard was behind the stream's tip (Kinesis MillisBehindLatest, in seconds).",
		}, []string{"shard_id"}),
		leases: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventrelay_kinesis_leases_held", Help: "Shards this worker is processing."}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventrelay_kinesis_suppressed_total", Help: "Stream events dropped because the backfill already delivered them.",
		}),
		deliverSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "eventrelay_kinesis_batch_delivery_seconds", Help: "Time to deliver one GetRecords batch to the sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.events, m.checkpoints, m.behind, m.leases, m.deliverSeconds, m.suppressed)
	}
	return m
}

// The KCL MonitoringService hooks; ours are recorded by the processor.
func (m *metrics) Init(_, _, _ string) error          { return nil }
func (m *metrics) Start() error                       { return nil }
func (m *metrics) Shutdown()                          {}
func (m *metrics) IncrRecordsProcessed(string, int)   {}
func (m *metrics) IncrBytesProcessed(string, int64)   {}
func (m *metrics) MillisBehindLatest(string, float64) {}

// setBehind records Kinesis' MillisBehindLatest in seconds, the base unit.
func (m *metrics) setBehind(shard string, millis int64) {
	m.behind.WithLabelValues(shard).Set(float64(millis) / 1000)
}
func (m *metrics) DeleteMetricMillisBehindLatest(shard string) { m.behind.DeleteLabelValues(shard) }
func (m *metrics) LeaseGained(string)                          {}
func (m *metrics) LeaseLost(string)                            {}
func (m *metrics) LeaseRenewed(string)                         {}
func (m *metrics) RecordGetRecordsTime(string, float64)        {}
func (m *metrics) RecordProcessRecordsTime(string, float64)    {}

// kclLogger adapts zerolog to the KCL's logger. The library's chatter is
// demoted one level (its Info is our Debug) so our logs stay readable.
type kclLogger struct{ l zerolog.Logger }

func (k kclLogger) Debugf(f string, a ...any) { k.l.Trace().Msg(fmt.Sprintf(f, a...)) }
func (k kclLogger) Infof(f string, a ...any)  { k.l.Debug().Msg(fmt.Sprintf(f, a...)) }
func (k kclLogger) Warnf(f string, a ...any)  { k.at(zerolog.WarnLevel, fmt.Sprintf(f, a...)) }
func (k kclLogger) Errorf(f string, a ...any) { k.at(zerolog.ErrorLevel, fmt.Sprintf(f, a...)) }

// at logs msg at lvl, or at debug when it reports a lease given up for
// balancing (the library logs the failed renewal that ends the shard's
// consumer as an error; here it is the plan, logged by the balancer).
func (k kclLogger) at(lvl zerolog.Level, msg string) {
	if strings.Contains(msg, releasedMsg) {
		lvl = zerolog.DebugLevel
	}
	k.l.WithLevel(lvl).Msg(msg)
}

// Fatalf and Panicf are only reached by library paths eventrelay does not
// use (it builds its own clients); they log instead of ending the process.
func (k kclLogger) Fatalf(f string, a ...any) {
	k.l.Error().Bool("kcl_fatal", true).Msg(fmt.Sprintf(f, a...))
}
func (k kclLogger) Panicf(f string, a ...any) {
	k.l.Error().Bool("kcl_panic", true).Msg(fmt.Sprintf(f, a...))
}
func (k kclLogger) WithFields(f logger.Fields) logger.Logger {
	return kclLogger{k.l.With().Fields(map[string]any(f)).Logger()}
}

// RouteLibraryLogs sends the KCL's direct logrus lines (the polling
// consumer logs its lease renewals, and their failures, with logrus's
// global logger, not the configured one) through log, so that they come
// out in the process's format and levels. The last call's log wins.
func RouteLibraryLogs(log zerolog.Logger) {
	routed.Store(&log)
	routeOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.AddHook(logrusHook{})
	})
}

var (
	routed    atomic.Pointer[zerolog.Logger]
	routeOnce sync.Once
)

type logrusHook struct{}

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (logrusHook) Fire(e *logrus.Entry) error {
	k := kclLogger{*routed.Load()}
	switch {
	case e.Level <= logrus.ErrorLevel:
		k.Errorf("%s", e.Message)
	case e.Level == logrus.WarnLevel:
		k.Warnf("%s", e.Message)
	default:
		k.Infof("%s", e.Message)
	}
	return nil
}
