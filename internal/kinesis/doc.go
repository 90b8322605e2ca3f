// Package kinesis is the real-time source: a vmware-go-kcl-v2 worker that
// leases the shards of a Kinesis stream in a DynamoDB table, decodes each
// record (a OneWelcome envelope of several events) and delivers the events
// through the shared pipeline, checkpointing a shard only after the sink
// acknowledged every event before the checkpoint.
//
// The KCL library is archived upstream and has sharp edges this package
// handles: it builds the Kinesis and DynamoDB clients itself (credentials
// from internal/assumerole, endpoints via BaseEndpoint), creates the lease
// table as PAY_PER_REQUEST when missing (the library would create a
// PROVISIONED 10/10 table), and since ProcessRecords cannot return an
// error, the record processor blocks and retries until the batch is
// acknowledged or the process stops, never returning with records skipped.
// Left to itself it also lets the first worker take every shard; the
// balancer (balance.go) evens the leases out across workers through the
// library's checkpointer, handing a shard over only after delivering and
// checkpointing what it has in flight.
package kinesis
