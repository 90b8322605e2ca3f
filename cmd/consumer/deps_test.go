package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoDemoInProductionDeps keeps the demo out of the production binary:
// consumer links no franz-go at all (its fake broker kfake is the demo's;
// the sink's client is segmentio/kafka-go), no emulator orchestration and
// no test helper. The demo is cmd/demo.
func TestNoDemoInProductionDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/segmentio/kafka-go") {
		t.Fatalf("go list -deps lacks the sink's Kafka client; not the binary's dependencies?\n%s", out)
	}
	forbidden := []string{
		"github.com/twmb/franz-go/", // kfake, and kgo which only the demo and tests use
		"github.com/eventrelay/eventrelay/internal/emulators",
		"github.com/eventrelay/eventrelay/internal/awstest",
		"github.com/eventrelay/eventrelay/internal/kafkatest",
		"github.com/eventrelay/eventrelay/internal/testnet",
	}
	// The GCS reader makes its two JSON API requests itself: Google's
	// client libraries link gRPC and OpenTelemetry (with them, BENCHMARKS.md
	// at commit 6c1b74d: a 34 MB stripped binary, 26 MB for `consumer
	// version`; see its "binary" section for today's).
	heavy := []string{"google.golang.org/grpc", "google.golang.org/api/", "go.opentelemetry.io/", "cloud.google.com/go/storage"}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) {
				t.Errorf("consumer links %s; it belongs to the demo (cmd/demo) or the tests", dep)
			}
		}
		for _, f := range heavy {
			if dep == f || strings.HasPrefix(dep, f) {
				t.Errorf("consumer links %s; the GCS reader needs no Google client library (internal/replay/gcs.go)", dep)
			}
		}
	}
}
