package sink

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestSummarize: a write failing for 1,000 messages with the same i/o
// timeout used to be logged as 1,000 repetitions of it (80 KB a line).
func TestSummarize(t *testing.T) {
	timeout := errors.New("write tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout")
	werrs := make(kafka.WriteErrors, 1000)
	for i := range werrs {
		werrs[i] = timeout
	}
	got := summarize(werrs)
	if got != "1000 of 1000 messages failed: "+timeout.Error() {
		t.Errorf("summary %q", got)
	}
	werrs[7] = kafka.MessageSizeTooLarge
	werrs[8] = nil
	if got := summarize(werrs); !strings.HasPrefix(got, "999 of 1000 messages failed: ") || !strings.HasSuffix(got, "(and 1 other distinct error)") || len(got) > 300 {
		t.Errorf("summary %q", got)
	}
	if got := summarize(io.ErrUnexpectedEOF); got != "unexpected EOF" {
		t.Errorf("plain error: %q", got)
	}
}
