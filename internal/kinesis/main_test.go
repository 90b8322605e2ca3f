package kinesis

import (
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: the
// package starts workers, and each must stop with its context or Close.
func TestMain(m *testing.M) {
	RouteLibraryLogs(zerolog.Nop()) // the KCL's logrus lines, as the binary routes them
	goleak.VerifyTestMain(m)
}
