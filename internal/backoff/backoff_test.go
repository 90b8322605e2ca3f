package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	for attempt := 0; attempt < 100; attempt++ {
		d := Delay(attempt, 100*time.Millisecond, 5*time.Second)
		if d < 50*time.Millisecond || d > 5*time.Second {
			t.Fatalf("attempt %d: %v out of [50ms, 5s]", attempt, d)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context = %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
}
