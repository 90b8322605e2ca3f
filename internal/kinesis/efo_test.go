package kinesis

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Enhanced fan-out cannot be exercised end to end here: kinesis-local's
// SubscribeToShard answers without the "initial-response" event that
// aws-sdk-go-v2 requires ("deserialize initial response: expected
// initial-response, got SubscribeToShardEvent"). This checks the wiring.
func TestEnhancedFanOutWiring(t *testing.T) {
	s := &Stream{cfg: Config{Stream: "s", EnhancedFanOut: true, ConsumerName: "relay-efo"}.withDefaults(), clients: Clients{Region: "eu-west-1"}, log: zerolog.Nop(), m: newMetrics(nil)}
	k := s.kclConfig()
	if !k.EnableEnhancedFanOutConsumer || k.EnhancedFanOutConsumerName != "relay-efo" {
		t.Errorf("enhanced fan-out not enabled: %+v", k)
	}
	s.cfg.EnhancedFanOut = false
	if s.kclConfig().EnableEnhancedFanOutConsumer {
		t.Error("polling config enabled fan-out")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Stream: "s"}, ""},
		{Config{}, "source.kinesis.stream"},
		{Config{Stream: "s", InitialPosition: "at_timestamp"}, "source.kinesis.initial_timestamp"},
		{Config{Stream: "s", InitialPosition: "EARLIEST"}, "source.kinesis.initial_position"},
		{Config{Stream: "s", MaxRecords: 20000}, "source.kinesis.max_records"},
		{Config{Stream: "s", FailoverTime: 10}, "source.kinesis.failover_time"},
		{Config{Stream: "s", Format: "xml"}, "source.kinesis.format"},
	}
	for _, tc := range tests {
		err := tc.c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.c, err, tc.want)
		}
	}
}
