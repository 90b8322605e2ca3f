package kinesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// Lease balancing (source.kinesis.balance_leases). The KCL takes a free
// lease whenever a worker has fewer than max_leases_for_worker, so the
// first replica to start holds every shard and later ones get none; its
// lease stealing moves leases back and forth. The balancer works through
// the one seam the library offers, the checkpointer:
//
//   - Every shard_sync_interval it writes this worker's heartbeat row into
//     the lease table, lists the stream's shards and reads the table
//     (buildView), so workers that hold nothing yet count too.
//   - Taking: GetLease for a shard this worker does not hold is refused
//     (the library's "lease not acquired", so its loop moves on) unless
//     the view allows it (view.mayTake).
//   - Shedding: when the view says so (view.toShed) it picks one lease per
//     interval, the highest shard id; the shard's processor, at its next
//     call, delivers and checkpoints what it has in flight and stops
//     (processor.release); the next renewal of the lease then fails, the
//     library ends the shard's consumer and clears the owner
//     (RemoveLeaseOwner), and a worker below its share takes the shard at
//     its next sync, from the checkpoint, without waiting for
//     failover_time.
//
// Heartbeat rows share the lease table under a key no shard has
// (workerKeyPrefix); they carry no AssignedTo or Checkpoint attribute, so
// the library's reads of the table (by shard id, and the Scan of lease
// stealing, which skips rows without both) pass them over.

const (
	workerKeyPrefix = "eventrelay-worker#"
	attrWorker      = "WorkerID"
	attrHeartbeat   = "HeartbeatTimeout"
	attrMaxLeases   = "MaxLeases"
)

// errReleased fails the renewal of a lease given up for balancing; it is
// the library's "lease not acquired", which ends the shard's consumer.
var errReleased = fmt.Errorf("%s: %w", releasedMsg, checkpoint.ErrLeaseNotAcquired{})

// releasedMsg names errReleased in the library's log lines (kclLogger
// demotes them: the move is deliberate).
const releasedMsg = "lease released to balance the shards across workers"

type shedState int

const (
	shedRequested shedState = iota // waiting for the processor's next call
	shedFlushing                   // the processor delivers and checkpoints
	shedFlushed                    // the next renewal gives the lease up
)

type shedding struct {
	state shedState
	since time.Time
}

// handOverDelay separates a shard's last checkpoint from the release of
// its lease (a hand-over or a graceful stop). The KCL's loop reads a
// shard's checkpoint and then, in a separate call, takes the lease,
// writing back the checkpoint it read: had the release and a checkpoint
// just before it fallen between the two, the taker would put the older
// checkpoint back and deliver a batch twice. The library releases right
// after the last checkpoint; this makes that window a quarter second.
const handOverDelay = 250 * time.Millisecond

// balancer decides which leases this worker takes and gives up.
type balancer struct {
	s  *Stream
	id string
	m  balanceMetrics

	mu     sync.Mutex
	v      *view     // last reading of the table (nil: none usable)
	readAt time.Time // when v was read
	held   map[string]bool
	shed   map[string]*shedding
	// checkpointed is when each shard was last checkpointed.
	checkpointed map[string]time.Time
	reported     string // the last balance logged
	failures     int    // ticks failed in a row
}

type balanceMetrics struct {
	moves *prometheus.CounterVec
	live  prometheus.Gauge
	share prometheus.Gauge
}

func newBalancer(s *Stream, reg prometheus.Registerer) *balancer {
	m := balanceMetrics{
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventrelay_kinesis_lease_moves_total",
			Help: "Leases this worker took (taken: free shards, failovers, balancing) or gave up to even out the shards (shed)."}, []string{"direction"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventrelay_kinesis_live_workers",
			Help: "Workers sharing the stream's shards, as this worker last read the lease table."}),
		share: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventrelay_kinesis_lease_fair_share",
			Help: "The most leases this worker should hold: open shards divided by live workers, rounded up."}),
	}
	m.moves.WithLabelValues("taken")
	m.moves.WithLabelValues("shed")
	if reg != nil {
		reg.MustRegister(m.moves, m.live, m.share)
	}
	return &balancer{s: s, id: s.cfg.WorkerID, m: m, held: map[string]bool{}, shed: map[string]*shedding{},
		checkpointed: map[string]time.Time{}}
}

// A heartbeat keeps a worker live for failover_time, as a lease does, and
// is renewed three times as often (or every shard_sync_interval if that is
// shorter): a worker that died counts out about when its leases expire.
func (b *balancer) heartbeatEvery() time.Duration {
	return min(b.s.cfg.ShardSyncInterval, b.s.cfg.FailoverTime/3)
}

// staleAfter is how old a reading of the table may get before it is
// forgotten, and how long a hand-over may wait for its processor.
func (b *balancer) staleAfter() time.Duration {
	return max(b.s.cfg.FailoverTime, 3*b.s.cfg.ShardSyncInterval)
}

// run renews the heartbeat and, every shard_sync_interval, reads the table
// and decides, until ctx ends.
func (b *balancer) run(ctx context.Context) {
	tick := time.NewTicker(b.heartbeatEvery())
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(last) < b.s.cfg.ShardSyncInterval-b.heartbeatEvery()/2 {
				if err := b.heartbeat(ctx, now); err != nil {
					b.failed(ctx, now, err)
				}
				continue
			}
			last = now
			b.tick(ctx)
		}
	}
}

// tick renews the heartbeat, reads the table and decides.
func (b *balancer) tick(ctx context.Context) {
	now := time.Now()
	err := b.heartbeat(ctx, now)
	var listed []string
	var leases []leaseRow
	var workers []workerRow
	if err == nil {
		listed, err = b.listShards(ctx)
	}
	if err == nil {
		leases, workers, err = b.scan(ctx)
	}
	if err != nil {
		b.failed(ctx, now, err)
		return
	}
	active := b.s.activeShards()
	b.mu.Lock()
	b.failures = 0
	for shard, sh := range b.shed {
		if sh.state == shedRequested && now.Sub(sh.since) > b.staleAfter() {
			delete(b.shed, shard) // the processor did not come by (blocked): pick again
		}
	}
	v := buildView(now, listed, leases, workers, self{id: b.id, held: len(b.held), shedding: len(b.shed), cap: b.s.cfg.MaxLeasesForWorker})
	b.v, b.readAt = &v, now
	var pick string
	if v.toShed(b.id) > 0 {
		pick = b.pickLocked(active)
		if pick != "" {
			b.shed[pick] = &shedding{state: shedRequested, since: now}
		}
	}
	held, sh := len(b.held), v.shares()[b.id]
	b.mu.Unlock()

	b.m.live.Set(float64(len(v.held)))
	b.m.share.Set(float64(sh.hi))
	if msg := fmt.Sprintf("%d/%d/%d/%d", v.open, len(v.held), sh.lo, sh.hi); msg != b.reported {
		b.reported = msg
		b.s.log.Info().Int("open_shards", v.open).Int("live_workers", len(v.held)).Int("share_min", sh.lo).Int("share_max", sh.hi).
			Int("leases_held", held).Msg("lease balance")
	}
	if pick != "" {
		b.s.log.Info().Str("shard_id", pick).Int("leases_held", held).Int("share_max", sh.hi).Int("live_workers", len(v.held)).
			Msg("giving up a lease to even out the shards: delivering and checkpointing it first")
	}
	b.sweep(ctx, now, workers)
}

// failed logs a failed tick (the first, then every tenth) and, once the
// last good reading is stale, forgets it: the worker then takes leases as
// the library would and sheds none.
func (b *balancer) failed(ctx context.Context, now time.Time, err error) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	b.failures++
	n := b.failures
	if b.v != nil && now.Sub(b.readAt) > b.staleAfter() {
		b.v = nil
	}
	b.mu.Unlock()
	if n == 1 || n%10 == 0 {
		b.s.log.Warn().Err(err).Int("attempts", n).Msg("lease balancing cannot read the lease table or the shards; retrying (meanwhile leases are taken as without balancing)")
	}
}

// pickLocked chooses the lease to give up: the highest shard id among the
// shards with a live processor (one blocked before its first call would
// not hand over), not already being given up.
func (b *balancer) pickLocked(active []string) string {
	slices.Sort(active)
	for i := len(active) - 1; i >= 0; i-- {
		if b.held[active[i]] && b.shed[active[i]] == nil {
			return active[i]
		}
	}
	return ""
}

// activeShards are the shards with a live processor.
func (s *Stream) activeShards() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.active))
	for id := range s.active {
		out = append(out, id)
	}
	return out
}

// mayTake is the view's answer, or yes without a usable view.
func (b *balancer) mayTake() (bool, int, share) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.held)
	if b.v == nil {
		return true, n, share{}
	}
	return b.v.mayTake(b.id, n), n, b.v.shares()[b.id]
}

// beginRelease is the processor asking whether to hand its shard over;
// once it says yes the hand-over is no longer cancelled.
func (b *balancer) beginRelease(shard string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	sh := b.shed[shard]
	if sh == nil || sh.state != shedRequested {
		return false
	}
	sh.state = shedFlushing
	return true
}

// flushed: the processor delivered and checkpointed all it had; the next
// renewal gives the lease up.
func (b *balancer) flushed(shard string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sh := b.shed[shard]; sh != nil {
		sh.state = shedFlushed
	}
}

// release hands the shard over when the balancer asked for it: the units
// in flight are delivered and checkpointed, then the processor stops
// processing (what it is still given is read again by the next owner,
// from the checkpoint) until the library ends it. It reports whether the
// processor is done with the shard.
func (p *processor) release() bool {
	if p.released {
		return true
	}
	b := p.s.bal
	if b == nil || p.pl == nil || !b.beginRelease(p.shard) {
		return false
	}
	if p.halt(p.pl.Flush(p.ctx)) {
		return true
	}
	p.released = true
	p.s.setActive(p, false)
	p.s.m.behind.DeleteLabelValues(p.shard)
	b.flushed(p.shard)
	p.log.Info().Msg("shard delivered and checkpointed; its lease goes to a worker below its share")
	return true
}

// balancedLeases wraps the library's checkpointer with the balancer's
// decisions.
type balancedLeases struct {
	checkpoint.Checkpointer
	b *balancer
}

func (b *balancer) wrap(c checkpoint.Checkpointer) checkpoint.Checkpointer {
	return &balancedLeases{Checkpointer: c, b: b}
}

// GetLease takes a lease (a shard this worker does not hold) when the
// balance allows, and renews one unless it is being given up and its
// processor is done with it.
func (l *balancedLeases) GetLease(shard *par.ShardStatus, owner string) error {
	b := l.b
	b.mu.Lock()
	renewal, sh := b.held[shard.ID], b.shed[shard.ID]
	b.mu.Unlock()
	if renewal {
		if sh != nil && sh.state == shedFlushed {
			return errReleased
		}
		return l.Checkpointer.GetLease(shard, owner)
	}
	if ok, n, my := b.mayTake(); !ok {
		return fmt.Errorf("balancing: holding %d leases of a share of %d..%d: %w", n, my.lo, my.hi, checkpoint.ErrLeaseNotAcquired{})
	}
	if err := l.Checkpointer.GetLease(shard, owner); err != nil {
		return err
	}
	b.mu.Lock()
	b.held[shard.ID] = true
	b.mu.Unlock()
	b.m.moves.WithLabelValues("taken").Inc()
	return nil
}

// CheckpointSequence records when the shard was last checkpointed.
func (l *balancedLeases) CheckpointSequence(shard *par.ShardStatus) error {
	err := l.Checkpointer.CheckpointSequence(shard)
	l.b.mu.Lock()
	l.b.checkpointed[shard.ID] = time.Now()
	l.b.mu.Unlock()
	return err
}

// RemoveLeaseOwner is the library releasing a lease when a shard's
// consumer ends (graceful stop, shard end, lost or given-up lease), at
// least handOverDelay after the shard's last checkpoint.
func (l *balancedLeases) RemoveLeaseOwner(shard string) error {
	b := l.b
	b.mu.Lock()
	wait := handOverDelay - time.Since(b.checkpointed[shard])
	delete(b.checkpointed, shard)
	b.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	err := l.Checkpointer.RemoveLeaseOwner(shard)
	b.mu.Lock()
	sh := b.shed[shard]
	delete(b.held, shard)
	delete(b.shed, shard)
	b.mu.Unlock()
	if sh != nil && sh.state == shedFlushed {
		b.m.moves.WithLabelValues("shed").Inc()
		ev := b.s.log.Info()
		if err != nil {
			ev = b.s.log.Warn().Err(err).Str("then", "the lease expires after failover_time")
		}
		ev.Str("shard_id", shard).Msg("lease given up to even out the shards")
	}
	return err
}

// RemoveLeaseInfo is the library deleting the row of a shard that left
// the stream.
func (l *balancedLeases) RemoveLeaseInfo(shard string) error {
	l.b.mu.Lock()
	delete(l.b.held, shard)
	delete(l.b.shed, shard)
	l.b.mu.Unlock()
	return l.Checkpointer.RemoveLeaseInfo(shard)
}

func workerKey(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{checkpoint.LeaseKeyKey: &ddbtypes.AttributeValueMemberS{Value: workerKeyPrefix + id}}
}

// heartbeat writes this worker's row: live for failover_time.
func (b *balancer) heartbeat(ctx context.Context, now time.Time) error {
	item := workerKey(b.id)
	item[attrWorker] = &ddbtypes.AttributeValueMemberS{Value: b.id}
	item[attrHeartbeat] = &ddbtypes.AttributeValueMemberS{Value: now.Add(b.s.cfg.FailoverTime).UTC().Format(time.RFC3339Nano)}
	item[attrMaxLeases] = &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(b.s.cfg.MaxLeasesForWorker)}
	if _, err := b.s.clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(b.s.cfg.LeaseTable), Item: item}); err != nil {
		return fmt.Errorf("writing the heartbeat of worker %s to lease table %s (DynamoDB PutItem): %w", b.id, b.s.cfg.LeaseTable, err)
	}
	return nil
}

// leave deletes this worker's heartbeat, so the others count it out at
// once rather than when it expires.
func (b *balancer) leave(ctx context.Context) {
	if _, err := b.s.clients.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(b.s.cfg.LeaseTable), Key: workerKey(b.id)}); err != nil {
		b.s.log.Warn().Err(err).Msg("deleting this worker's heartbeat from the lease table failed; the others count it out when it expires")
	}
}

// sweep deletes heartbeats expired for ten failover times (workers that
// were killed); a heartbeat written meanwhile is kept (conditional).
func (b *balancer) sweep(ctx context.Context, now time.Time, workers []workerRow) {
	for _, w := range workers {
		if w.id == b.id || now.Sub(w.until) < 10*b.s.cfg.FailoverTime {
			continue
		}
		_, err := b.s.clients.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(b.s.cfg.LeaseTable), Key: workerKey(w.id),
			ConditionExpression:       aws.String(attrHeartbeat + " = :seen"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":seen": &ddbtypes.AttributeValueMemberS{Value: w.until.UTC().Format(time.RFC3339Nano)}},
		})
		var changed *ddbtypes.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &changed) && ctx.Err() == nil {
			b.s.log.Debug().Err(err).Str("worker_id", w.id).Msg("deleting an expired heartbeat failed")
		}
	}
}

// listShards lists the stream's shard ids.
func (b *balancer) listShards(ctx context.Context) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(b.s.cfg.Stream)}
	for {
		out, err := b.s.clients.Kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing shards of stream %s (Kinesis ListShards): %w", b.s.cfg.Stream, err)
		}
		for _, sh := range out.Shards {
			ids = append(ids, aws.ToString(sh.ShardId))
		}
		if out.NextToken == nil {
			return ids, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// scan reads the lease table's shard and heartbeat rows.
func (b *balancer) scan(ctx context.Context) ([]leaseRow, []workerRow, error) {
	var leases []leaseRow
	var workers []workerRow
	p := dynamodb.NewScanPaginator(b.s.clients.DynamoDB, &dynamodb.ScanInput{TableName: aws.String(b.s.cfg.LeaseTable), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("reading lease table %s (DynamoDB Scan): %w", b.s.cfg.LeaseTable, err)
		}
		for _, item := range page.Items {
			key := attrString(item, checkpoint.LeaseKeyKey)
			if id, ok := strings.CutPrefix(key, workerKeyPrefix); ok {
				w := workerRow{id: id, until: attrTime(item, attrHeartbeat)}
				if n, ok := item[attrMaxLeases].(*ddbtypes.AttributeValueMemberN); ok {
					w.cap, _ = strconv.Atoi(n.Value)
				}
				workers = append(workers, w)
				continue
			}
			leases = append(leases, leaseRow{shard: key, owner: attrString(item, checkpoint.LeaseOwnerKey),
				until: attrTime(item, checkpoint.LeaseTimeoutKey), finished: attrString(item, checkpoint.SequenceNumberKey) == checkpoint.ShardEnd})
		}
	}
	return leases, workers, nil
}

func attrString(item map[string]ddbtypes.AttributeValue, name string) string {
	if s, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// attrTime parses an RFC 3339 attribute; a missing or bad one is the zero
// time (expired).
func attrTime(item map[string]ddbtypes.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, attrString(item, name))
	return t
}

// balance reads the lease table once, so that the first lease is taken
// with a view of the others, and then every shard_sync_interval until ctx
// ends or the returned stop is called.
func (s *Stream) balance(ctx context.Context) (stop func()) {
	s.bal.tick(ctx)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.bal.run(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
