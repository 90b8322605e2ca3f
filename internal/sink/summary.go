package sink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// summarize renders a write error for a log line: a kafka.WriteErrors of
// a thousand identical i/o timeouts becomes "1000 of 1000 messages failed:
// <first error>" (plus how many other distinct errors), not 80 KB.
func summarize(err error) string {
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) {
		return err.Error()
	}
	var first error
	distinct := map[string]bool{}
	for _, e := range werrs {
		if e == nil {
			continue
		}
		if first == nil {
			first = e
		}
		distinct[e.Error()] = true
	}
	if first == nil {
		return "no message failed"
	}
	s := fmt.Sprintf("%d of %d messages failed: %v", werrs.Count(), len(werrs), first)
	if n := len(distinct) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d other distinct error%s)", n, strings.Repeat("s", min(n-1, 1)))
	}
	return s
}
