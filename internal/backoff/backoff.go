// Package backoff holds the waiting every retry loop shares: a sleep that
// ends with its context, and capped exponential delays with jitter.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits d or until ctx ends, returning ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delay is the wait before retry attempt (1-based): exponential from lo,
// capped at hi, with jitter over its upper half.
func Delay(attempt int, lo, hi time.Duration) time.Duration {
	d := lo << min(max(attempt-1, 0), 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}
