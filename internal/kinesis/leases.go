package kinesis

import (
	"errors"
	"sync"
	"time"

	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
)

// Two gaps of the KCL (v1.0.0) around leases, closed here.
//
// A shard consumer can end without shutting its processor down: both
// consumers return on a failed lease renewal or an unretried read error,
// and the fan-out consumer also when a resubscription fails (say
// ResourceInUseException, within 5 s of the last subscription) or when a
// subscription ends before its first event. The processor then stayed
// "active" for good: LeasesHeld counted it and, once the shard moved to
// another worker, Stalled reported it forever, so /readyz said 503. Every
// consumer is announced to the monitoring service (LeaseGained before it
// starts, LeaseLost when it ends, whatever the reason): monitor pairs them
// and retires a processor whose consumer ended without Shutdown.
//
// The fan-out consumer renews its lease only between events, in the loop
// that calls ProcessRecords; while a batch waits on Kafka (or a child shard
// on its parent), the lease runs out after failover_time and another worker
// takes the shard, while this one goes on delivering and, the library's
// checkpoints being unconditional writes, overwrites the new owner's row.
// (The polling consumer renews in a goroutine of its own.) leaseTable
// remembers each leased shard's status so that keepLease can renew the
// lease while the processor blocks, as the library would have.

// monitor is the KCL's monitoring service: the metrics, plus the pairing of
// shard consumers with their processors.
type monitor struct {
	*metrics
	s *Stream
}

func (m monitor) LeaseGained(shard string) { m.s.consumerStarts(shard) }
func (m monitor) LeaseLost(shard string)   { m.s.consumerEnded(shard) }

// consumerStarts counts a shard consumer about to start; the processor it
// creates takes the count as its generation in Initialize.
func (s *Stream) consumerStarts(shard string) {
	s.mu.Lock()
	s.started[shard]++
	s.mu.Unlock()
}

// consumerEnded counts a shard consumer that ended and retires its
// processor if the KCL did not shut it down. Consumers of a shard end in
// the order they started, so the n-th end is the n-th start's.
func (s *Stream) consumerEnded(shard string) {
	s.mu.Lock()
	s.ended[shard]++
	p := s.active[shard]
	if p == nil || p.gen > s.ended[shard] {
		s.mu.Unlock()
		return
	}
	delete(s.active, shard)
	s.retired++
	n := len(s.active)
	s.mu.Unlock()
	s.m.leases.Set(float64(n))
	s.m.behind.DeleteLabelValues(shard)
	p.lost.Store(true)
	p.log.Warn().Msg("the KCL released the shard without shutting its processor down; not checkpointing: the next owner reads what was not checkpointed again")
}

// leaseTable is the KCL's checkpointer (DynamoDB), remembering the status
// of each shard whose lease this worker took.
type leaseTable struct {
	checkpoint.Checkpointer
	mu     sync.Mutex
	shards map[string]*par.ShardStatus
}

func (l *leaseTable) GetLease(shard *par.ShardStatus, owner string) error {
	err := l.Checkpointer.GetLease(shard, owner)
	if err == nil {
		l.mu.Lock()
		l.shards[shard.ID] = shard
		l.mu.Unlock()
	}
	return err
}

func (l *leaseTable) status(shard string) *par.ShardStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shards[shard]
}

// keepLease renews the shard's lease until the returned stop is called,
// whenever it has less than half of failover_time left (when the KCL
// renews it). For the fan-out consumer only: the KCL's own renewal runs
// in the goroutine that is blocked in the processor meanwhile, so the two
// never race; stop waits for a renewal under way.
func (p *processor) keepLease() (stop func()) {
	if !p.s.cfg.EnhancedFanOut || p.s.leases == nil {
		return func() {}
	}
	st := p.s.leases.status(p.shard)
	if st == nil {
		return func() {}
	}
	refresh := p.s.cfg.FailoverTime / 2
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(refresh / 2)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if time.Until(st.GetLeaseTimeout()) > refresh {
				continue
			}
			err := p.s.leases.GetLease(st, p.s.cfg.WorkerID)
			var notAcquired checkpoint.ErrLeaseNotAcquired
			switch {
			case errors.As(err, &notAcquired):
				p.lost.Store(true)
				p.log.Warn().Err(err).Msg("lease lost while the processor was blocked; not checkpointing: the new owner reads what was not checkpointed again")
				return
			case err != nil:
				p.log.Warn().Err(err).Msg("renewing the lease while the processor is blocked failed; retrying")
			default:
				p.log.Debug().Time("lease_timeout", st.GetLeaseTimeout()).Msg("lease renewed while the processor is blocked")
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
