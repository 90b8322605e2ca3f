// Command kfake runs franz-go's kfake, a broker speaking the Kafka wire
// protocol, on 127.0.0.1 for local runs without Docker:
//
//	go run ./localstack/kfake -port 9092 -partitions 4
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "port on 127.0.0.1")
	partitions := flag.Int("partitions", 4, "partitions of the seeded topics")
	topics := flag.String("topics", "events.onewelcome,events.fulfillmenttools,events.infobip,events.fluent,events.akeneo-logs,events.dlq,events", "comma-separated topics to create (\"\" for none)")
	dataDir := flag.String("data-dir", "", "keep data across restarts in this directory")
	autoCreate := flag.Bool("auto-create", true, "create topics clients ask for (Kafka's auto.create.topics.enable)")
	flag.Parse()
	opts := []kfake.Opt{kfake.Ports(*port), kfake.DefaultNumPartitions(*partitions)}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	fmt.Println("kfake listening on", strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
}
