package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/config"
	kin "github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Prelude runs once the stream worker is built and before it follows the
// stream: `consumer stream --backfill` replays an export there and sets
// where the worker starts. reg is the operations server's registry.
type Prelude func(ctx context.Context, clients kin.Clients, worker *kin.Stream, s sink.Sink, reg prometheus.Registerer) error

// Stream runs the real-time worker of `consumer stream` until ctx ends,
// then drains it: readiness turns 503, reading stops, the batch in hand is
// delivered and checkpointed, leases are released. A stdout sink writes
// to out; before, when not nil, runs ahead of the worker.
func Stream(ctx context.Context, cfg config.Config, out io.Writer, log zerolog.Logger, before Prelude) error {
	// The operations server and credential refreshers outlive the drain.
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOps()
	srv, err := StartOps(opsCtx, cfg, config.StreamHTTPAddr, log)
	if err != nil {
		return &ConfigError{err}
	}
	streamAWS, streamCreds, err := LoadAWS(opsCtx, cfg, cfg.AWS.StreamRole, "stream_role", log, srv.Registry())
	if err != nil {
		return err
	}
	leaseAWS, leaseCreds, err := LoadAWS(opsCtx, cfg, cfg.AWS.LeaseTableRole, "lease_table_role", log, srv.Registry())
	if err != nil {
		return err
	}
	s, err := BuildSink(ctx, cfg, out, log, srv.Registry())
	if err != nil {
		return err
	}
	defer s.Close()
	clients := kin.Clients{
		Kinesis: kinesis.NewFromConfig(streamAWS, func(o *kinesis.Options) {
			if e := cfg.AWS.EndpointFor(assumerole.ServiceKinesis); e != "" {
				o.BaseEndpoint = aws.String(e)
			}
		}),
		DynamoDB: dynamodb.NewFromConfig(leaseAWS, func(o *dynamodb.Options) {
			if e := cfg.AWS.EndpointFor(assumerole.ServiceDynamoDB); e != "" {
				o.BaseEndpoint = aws.String(e)
			}
		}),
		Region: streamAWS.Region,
	}
	worker, err := kin.New(cfg.Source.Kinesis, clients, s, log, srv.Registry())
	if err != nil {
		return &ConfigError{err}
	}
	kin.RouteLibraryLogs(log.With().Str("stream", cfg.Source.Kinesis.Stream).Logger())
	if before != nil {
		if err := before(ctx, clients, worker, s, srv.Registry()); err != nil {
			return err
		}
	}
	srv.SetReady(func() error {
		if err := streamCreds.Healthy(); err != nil {
			return fmt.Errorf("stream credentials: %w", err)
		}
		if err := leaseCreds.Healthy(); err != nil {
			return fmt.Errorf("lease table credentials: %w", err)
		}
		if worker.LeasesHeld() == 0 {
			return errors.New("no shard leases held yet")
		}
		return worker.Stalled()
	})
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		<-ctx.Done()
		srv.Drain()
	}()
	return worker.Run(runCtx)
}
