package replay

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: the
// package starts workers, and each must stop with its context or Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started at init by cloud.google.com/go/storage, which the test server
		// (fake-gcs-server) links, for the process's life.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}
