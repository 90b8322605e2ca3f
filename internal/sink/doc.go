// Package sink owns delivery: it turns normalized events into Kafka
// messages (the public message contract), writes them, and acknowledges a
// batch only when every message in it is durable. Sources advance their
// checkpoints from that acknowledgement and nothing else.
//
// A Sink takes a Batch of events plus dead letters (records that could not
// be decoded). Deliver blocks until the whole batch is acknowledged: while
// Kafka is unavailable it retries with capped backoff, so callers feel
// backpressure and memory stays bounded by the batches in flight. It returns
// an error only when the context ends or delivery can never succeed (for
// example an authorization failure); the caller must then not checkpoint.
//
// Implementations: Kafka (segmentio/kafka-go, acks=all) and Stdout (JSON
// lines, for dry runs).
package sink
