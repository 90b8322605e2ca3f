package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/emulators"
	kin "github.com/eventrelay/eventrelay/internal/kinesis"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// demoStack is the embedded local stack.
type demoStack struct {
	kinesis, dynamo *emulators.Process
	kafka           *kfake.Cluster
	brokers         []string
	logDir          string
}

func startDemoStack() (*demoStack, error) {
	dir, err := emulators.FindDir()
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "eventrelay-demo-")
	if err != nil {
		return nil, err
	}
	s := &demoStack{logDir: logDir}
	logf := func(name string) *os.File {
		f, _ := os.Create(filepath.Join(logDir, name+".log"))
		return f
	}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = emulators.FreePort(); err != nil {
			return nil, err
		}
	}
	if s.kinesis, err = emulators.Kinesis(dir, ports[0], ports[1], logf("kinesis-local")); err != nil {
		return nil, err
	}
	if s.dynamo, err = emulators.DynamoDB(dir, ports[2], logf("dynalite")); err != nil {
		s.stop()
		return nil, err
	}
	if s.kafka, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(ports[3]), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4), kfake.SeedTopics(4, "events.onewelcome", "events.dlq")); err != nil {
		s.stop()
		return nil, fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	s.brokers = s.kafka.ListenAddrs()
	return s, nil
}

func (s *demoStack) stop() {
	if s.kafka != nil {
		s.kafka.Close()
	}
	s.kinesis.Stop()
	s.dynamo.Stop()
}

func demo(ctx context.Context, out, errw io.Writer, events, shards int, keep bool, httpAddr, logLevel string) error {
	fmt.Fprintln(out, "eventrelay demo: Kinesis -> Kafka on a local stack (no cloud account, no Docker)")
	st, err := startDemoStack()
	if err != nil {
		return err
	}
	defer st.stop()
	// The emulators accept any well-formed signature; the SDK's default
	// chain finds these.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_EC2_METADATA_DISABLED": "true"} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AWS_SESSION_TOKEN")
	cfg := config.Config{
		Log:  config.Log{Level: logLevel, Format: "console"},
		HTTP: config.HTTP{Addr: httpAddr},
		AWS:  config.AWS{Config: assumerole.Config{Region: "us-east-1", Endpoints: assumerole.Endpoints{Kinesis: st.kinesis.URL, DynamoDB: st.dynamo.URL}}},
		Source: config.Source{Kinesis: kin.Config{Stream: "demo-onewelcome", Application: "eventrelay-demo",
			ShardSyncInterval: 500 * time.Millisecond, FailoverTime: 3 * time.Second, IdleBetweenReads: 100 * time.Millisecond}},
	}
	cfg.Sink.Kafka.Brokers = st.brokers
	fmt.Fprintf(out, "  kinesis-local  %s  stream %s, %d shards\n", st.kinesis.URL, cfg.Source.Kinesis.Stream, shards)
	fmt.Fprintf(out, "  dynalite       %s  lease table %s\n", st.dynamo.URL, cfg.Source.Kinesis.Application)
	fmt.Fprintf(out, "  kafka (kfake)  %s  topics events.onewelcome, events.dlq\n", strings.Join(st.brokers, ","))
	fmt.Fprintf(out, "  emulator logs  %s\n", st.logDir)

	awsCfg, _, err := assumerole.Load(ctx, cfg.AWS.Config, assumerole.Role{})
	if err != nil {
		return err
	}
	kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(st.kinesis.URL) })
	written, records, err := writeSample(ctx, kc, cfg.Source.Kinesis.Stream, shards, events)
	if err != nil {
		return err
	}
	const poison = 3
	fmt.Fprintf(out, "wrote %d events in %d records (+%d poison records) to Kinesis\n", written, records, poison)

	log, err := app.Logger(cfg, errw)
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Stream(runCtx, cfg, out, log, nil) }()
	start := time.Now()
	counts, sample, err := waitForKafka(ctx, st.brokers, written, poison, 2*time.Minute)
	if err != nil {
		stopRun()
		<-done
		return err
	}
	fmt.Fprintf(out, "the worker delivered them in %s:\n", time.Since(start).Round(100*time.Millisecond))
	topics := make([]string, 0, len(counts))
	for t := range counts {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		fmt.Fprintf(out, "  %-18s %d messages\n", t, counts[t])
	}
	fmt.Fprintf(out, "a message as downstream teams see it:\n  topic %s partition %d key %q\n", sample.Topic, sample.Partition, sample.Key)
	for _, h := range sample.Headers {
		fmt.Fprintf(out, "  header %-18s %s\n", h.Key, h.Value)
	}
	fmt.Fprintf(out, "  value  %s\n", sample.Value)
	if keep {
		fmt.Fprintf(out, "running until Ctrl-C; try:\n  kcat -C -b %s -t events.onewelcome -f '%%k %%h\\n'\n  curl -s http://%s/metrics | grep eventrelay_\n", st.brokers[0], httpAddr)
		<-ctx.Done()
	}
	stopRun()
	return <-done
}

// writeSample creates the stream and writes OneWelcome envelopes of 1-5
// events per aggregate, then three poison records.
func writeSample(ctx context.Context, kc *kinesis.Client, stream string, shards, events int) (written, records int, err error) {
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		return 0, 0, fmt.Errorf("creating stream %s: %w", stream, err)
	}
	for {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	types_ := []string{"UserSignedInEvent", "UserCreatedEvent", "UserSignedOutEvent", "PasswordChangedEvent"}
	var batch []types.PutRecordsRequestEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
		if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
			return fmt.Errorf("writing sample records: %v", err)
		}
		batch = batch[:0]
		return nil
	}
	base := time.Now().UTC().Add(-time.Hour)
	for written < events {
		agg := fmt.Sprintf("user-%04d", rand.IntN(250))
		var evs []string
		for range min(1+rand.IntN(5), events-written) {
			evs = append(evs, fmt.Sprintf(`{"metadata":{"eventId":"%08x-demo-4000-8000-%012d","type":"%s","category":"public","aggregateId":"%s","tenantId":"50a7dbf5-ce45-4f57-ab9a-554c23510a01","occurredTime":"%s","metadataVersion":"1.0","payloadVersion":"1.0","producerId":"demo","producerInstanceId":"demo-1","tags":["EXPORTABLE"]},"payload":{"identityProviderId":"idp-1","destination":"https://app.example.com"}}`,
				rand.Uint32(), written, types_[rand.IntN(len(types_))], agg, base.Add(time.Duration(written)*time.Second).Format("2006-01-02T15:04:05.000000+00:00")))
			written++
		}
		batch = append(batch, types.PutRecordsRequestEntry{Data: []byte(`{"events":[` + strings.Join(evs, ",") + `]}`), PartitionKey: aws.String(agg)})
		records++
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	for _, bad := range []string{"this is not JSON", `{"events":"not an array"}`, `{"events":[{"metadata":{"eventId":"no-type-or-time"}}]}`} {
		batch = append(batch, types.PutRecordsRequestEntry{Data: []byte(bad), PartitionKey: aws.String("poison")})
	}
	return written, records, flush()
}

// waitForKafka reads both topics until the events and dead letters arrived.
func waitForKafka(ctx context.Context, brokers []string, events, dead int, timeout time.Duration) (map[string]int, *kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events.onewelcome", "events.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	counts := map[string]int{}
	var sample *kgo.Record
	for counts["events.onewelcome"] < events || counts["events.dlq"] < dead {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return counts, sample, fmt.Errorf("only %v arrived within %s (worker logs: --log-level info)", counts, timeout)
		}
		fs.EachRecord(func(r *kgo.Record) {
			counts[r.Topic]++
			if sample == nil && r.Topic == "events.onewelcome" {
				sample = r
			}
		})
	}
	return counts, sample, nil
}
