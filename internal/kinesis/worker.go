package kinesis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/pipeline"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
)

// Clients are the AWS clients the worker uses; build them with
// internal/assumerole so each can have its own credentials and endpoint.
type Clients struct {
	Kinesis  *kinesis.Client
	DynamoDB *dynamodb.Client
	Region   string
}

// Stream runs the KCL worker.
type Stream struct {
	cfg     Config
	clients Clients
	sink    sink.Sink
	log     zerolog.Logger
	m       *metrics
	pm      *pipeline.Metrics

	parents parents
	// suppress drops events already delivered by a backfill (nil: none).
	suppress func(id string) bool
	// bal evens out the leases across workers (nil: balance_leases off).
	bal *balancer

	mu     sync.Mutex
	active map[string]*processor // shards with a live processor
	// started and ended count the KCL's shard consumers per shard (see
	// monitor).
	started, ended map[string]int
	retired        int // processors retired without Shutdown
	leases         *leaseTable

	// consumerARN is the enhanced fan-out consumer, once registered.
	consumerARN string
	// subscriptionIdle ends a silent subscription (subscriptionIdleTimeout).
	subscriptionIdle time.Duration

	// fatal receives the first error no retry can mend (a missing Kafka
	// topic); Run then drains and returns it.
	fatal chan error
}

// New builds a stream worker; it does not connect until Run.
func New(cfg Config, clients Clients, s sink.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clients.Kinesis == nil || clients.DynamoDB == nil || clients.Region == "" {
		return nil, errors.New("kinesis: Kinesis and DynamoDB clients and a region are required")
	}
	cfg = cfg.withDefaults()
	if _, err := envelope.NewDecoder(cfg.decoderOptions()); err != nil {
		return nil, fmt.Errorf("source.kinesis: building the record decoder: %w", err)
	}
	st := &Stream{cfg: cfg, clients: clients, sink: s, log: log.With().Str("stream", cfg.Stream).Logger(),
		m: newMetrics(reg), pm: pipeline.NewMetrics(reg), active: map[string]*processor{}, fatal: make(chan error, 1),
		started: map[string]int{}, ended: map[string]int{}, subscriptionIdle: subscriptionIdleTimeout}
	st.parents.s = st
	if cfg.balance() {
		st.bal = newBalancer(st, reg)
	}
	if reg != nil {
		reg.MustRegister(newProgressCollector(st))
	}
	return st, nil
}

// Suppress makes the worker drop events for which drop returns true (the
// events a backfill already delivered in its overlap with the stream).
// Call before Run.
func (s *Stream) Suppress(drop func(id string) bool) { s.suppress = drop }

// keep is the pipeline filter when Suppress was called: it drops the
// events a backfill delivered.
func (s *Stream) keep(e *envelope.Event) bool {
	if s.suppress(e.ID) {
		s.m.suppressed.Inc()
		return false
	}
	return true
}

// HasCheckpoints reports whether the lease table holds any checkpoint,
// that is whether this application has read the stream before.
func HasCheckpoints(ctx context.Context, ddb *dynamodb.Client, table string) (bool, error) {
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var notFound *ddbtypes.ResourceNotFoundException
			if errors.As(err, &notFound) {
				return false, nil
			}
			return false, fmt.Errorf("scanning lease table %s (DynamoDB Scan): %w", table, err)
		}
		for _, item := range page.Items {
			if _, ok := item[checkpoint.SequenceNumberKey]; ok {
				return true, nil
			}
		}
	}
	return false, nil
}

// StartAt makes shards without a checkpoint start at t (AT_TIMESTAMP of
// the records' arrival). Call before Run.
func (s *Stream) StartAt(t time.Time) {
	s.cfg.InitialPosition = "AT_TIMESTAMP"
	s.cfg.InitialTimestamp = t
}

// LeaseTable is the lease table's name after defaults.
func (s *Stream) LeaseTable() string { return s.cfg.LeaseTable }

// LeasesHeld is the number of shards this worker is processing now.
func (s *Stream) LeasesHeld() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

// fail stops the worker with err (the first one wins).
func (s *Stream) fail(err error) {
	select {
	case s.fatal <- err:
	default:
	}
}

// ConsumerARN is the enhanced fan-out consumer the worker reads with, once
// Run registered it (empty when polling).
func (s *Stream) ConsumerARN() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumerARN
}

func (s *Stream) setActive(p *processor, on bool) {
	s.mu.Lock()
	if on {
		p.gen = s.started[p.shard]
		s.active[p.shard] = p
	} else if s.active[p.shard] == p {
		delete(s.active, p.shard)
	}
	n := len(s.active)
	s.mu.Unlock()
	s.m.leases.Set(float64(n))
}

// Run consumes the stream until ctx ends, then drains: it stops reading,
// lets each shard finish delivering the batch in hand and checkpoint it,
// and releases the leases, within DrainTimeout.
func (s *Stream) Run(ctx context.Context) error {
	if err := EnsureLeaseTable(ctx, s.clients.DynamoDB, s.cfg.LeaseTable); err != nil {
		return err
	}
	sum, err := s.clients.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.Stream)})
	if err != nil {
		return fmt.Errorf("describing stream %s (Kinesis DescribeStreamSummary): %w", s.cfg.Stream, err)
	}
	kc := s.clients.Kinesis
	if s.cfg.EnhancedFanOut {
		arn, err := s.registerConsumer(ctx, aws.ToString(sum.StreamDescriptionSummary.StreamARN))
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.consumerARN = arn
		s.mu.Unlock()
		kc = fanOutClient(kc, s.subscriptionIdle)
	}
	// deliverCtx outlives ctx by the drain timeout so the batch in hand can
	// still be delivered and checkpointed during a graceful stop.
	deliverCtx, cancelDeliver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliver()
	var cp checkpoint.Checkpointer = checkpoint.NewDynamoCheckpoint(s.kclConfig()).WithDynamoDB(s.clients.DynamoDB)
	stopBalancing := func() {}
	if s.bal != nil {
		cp = s.bal.wrap(cp)
		stopBalancing = s.balance(ctx)
		defer stopBalancing()
	}
	// The KCL sees the lease table through leaseTable (leases kept while a
	// batch waits, see keepLease), which sees it through the balancer.
	s.leases = &leaseTable{Checkpointer: cp, shards: map[string]*par.ShardStatus{}}
	w := worker.NewWorker(&factory{s: s, ctx: deliverCtx, stop: ctx}, s.kclConfig()).
		WithKinesis(kc).
		WithCheckpointer(s.leases)
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the KCL worker: %w", err)
	}
	s.log.Info().Str("worker_id", s.cfg.WorkerID).Str("lease_table", s.cfg.LeaseTable).Msg("stream worker started")
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	go s.watch(watchCtx)
	var fatal error
	select {
	case <-ctx.Done():
	case fatal = <-s.fatal:
		s.log.Error().Err(fatal).Msg("stopping the worker: the failed shard is not checkpointed and will be read again after the fix")
	}
	s.log.Info().Stringer("drain_timeout", s.cfg.DrainTimeout).Msg("draining: finishing in-flight batches, checkpointing, releasing leases")
	stopBalancing()
	done := make(chan struct{})
	go func() {
		w.Shutdown()
		close(done)
	}()
	select {
	case <-done:
		if s.bal != nil {
			leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainGrace)
			s.bal.leave(leaveCtx)
			cancel()
		}
		s.log.Info().Msg("stream worker stopped")
		return fatal
	case <-time.After(s.cfg.DrainTimeout):
		// A hard bound: deliveries are cancelled; a call stuck on a stalled
		// dependency (the lease table, say) is given a moment and then
		// left behind, since the process is exiting.
		cancelDeliver()
		select {
		case <-done:
		case <-time.After(drainGrace):
			s.log.Error().Stringer("drain_timeout", s.cfg.DrainTimeout).Msg("a dependency stalls the shutdown; exiting without waiting for it")
		}
		return fmt.Errorf("drain timed out after %s: undelivered batches were not checkpointed and will be read again", s.cfg.DrainTimeout)
	}
}

func (s *Stream) kclConfig() *kclcfg.KinesisClientLibConfiguration {
	c := s.cfg
	k := kclcfg.NewKinesisClientLibConfigWithCredentials(c.Application, c.Stream, s.clients.Region, c.WorkerID, nil, nil).
		WithTableName(c.LeaseTable).
		WithMaxRecords(c.MaxRecords).
		WithIdleTimeBetweenReadsInMillis(int(c.IdleBetweenReads.Milliseconds())).
		WithShardSyncIntervalMillis(int(c.ShardSyncInterval.Milliseconds())).
		WithFailoverTimeMillis(int(c.FailoverTime.Milliseconds())).
		WithLeaseRefreshPeriodMillis(int(c.FailoverTime.Milliseconds() / 2)).
		// The polling consumer renews every LeaseRefreshWaitTime (the
		// library's 2.5s whatever failover_time is): three times per
		// failover_time, so a lease never lapses by a late renewal.
		WithLeaseRefreshWaitTime(int(max(c.FailoverTime.Milliseconds()/3, 1))).
		WithLeaseStealing(c.LeaseStealing).
		// Idle reads call the processor too, so it checkpoints the units
		// acknowledged since the last batch without waiting for new records.
		WithCallProcessRecordsEvenForEmptyRecordList(true).
		WithLogger(kclLogger{s.log}).
		WithMonitoringService(monitor{s.m, s})
	if c.MaxLeasesForWorker > 0 {
		k = k.WithMaxLeasesForWorker(c.MaxLeasesForWorker)
	}
	switch c.InitialPosition {
	case "LATEST":
		k = k.WithInitialPositionInStream(kclcfg.LATEST)
	case "AT_TIMESTAMP":
		ts := c.InitialTimestamp
		k = k.WithTimestampAtInitialPositionInStream(&ts)
	default:
		k = k.WithInitialPositionInStream(kclcfg.TRIM_HORIZON)
	}
	switch {
	case c.EnhancedFanOut && s.consumerARN != "":
		k = k.WithEnhancedFanOutConsumerARN(s.consumerARN) // registered by Run (efo.go)
	case c.EnhancedFanOut:
		k = k.WithEnhancedFanOutConsumerName(c.ConsumerName)
	}
	return k
}

// EnsureLeaseTable creates the lease table as on-demand (PAY_PER_REQUEST)
// when it is missing and waits until it is ACTIVE (the library does not wait).
func EnsureLeaseTable(ctx context.Context, ddb *dynamodb.Client, table string) error {
	_, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var notFound *ddbtypes.ResourceNotFoundException
	switch {
	case err == nil:
	case errors.As(err, &notFound):
		_, err = ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(checkpoint.LeaseKeyKey), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(checkpoint.LeaseKeyKey), KeyType: ddbtypes.KeyTypeHash}},
			BillingMode:          ddbtypes.BillingModePayPerRequest,
		})
		var inUse *ddbtypes.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("creating lease table %s (DynamoDB CreateTable): %w", table, err)
		}
	default:
		return fmt.Errorf("describing lease table %s (DynamoDB DescribeTable): %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(ddb, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("waiting for lease table %s to become active (DynamoDB DescribeTable): %w", table, err)
	}
	return nil
}

type factory struct {
	s    *Stream
	ctx  context.Context // delivery: ends when a drain times out
	stop context.Context // ends when the worker is asked to stop
}

// CreateProcessor makes the processor of one shard. KCL takes no error
// here: should the decoder fail to build (New built one with the same
// options, so it does not), the processor is halted — it reads on without
// delivering or checkpointing — and the worker stops with the error, rather
// than panicking on the first record.
func (f *factory) CreateProcessor() kcl.IRecordProcessor {
	p := &processor{s: f.s, ctx: f.ctx, stop: f.stop}
	dec, err := envelope.NewDecoder(f.s.cfg.decoderOptions())
	if err != nil {
		p.halted = true
		f.s.fail(fmt.Errorf("source.kinesis: building the record decoder: %w", err))
	}
	p.dec = dec
	return p
}
