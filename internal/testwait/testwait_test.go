package testwait

import (
	"strings"
	"testing"
	"time"
)

type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.failed = args[0].(string)
	panic(r)
}

func TestUntil(t *testing.T) {
	n := 0
	Until(t, time.Second, "three calls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times", n)
	}
	r := &recorder{TB: t}
	func() {
		defer func() { recover() }()
		Until(r, 30*time.Millisecond, "never", func() bool { return false }, func() string { return "the logs" })
	}()
	if !strings.Contains(r.failed, "for never") || !strings.Contains(r.failed, "the logs") {
		t.Errorf("failure message %q lacks what and the context", r.failed)
	}
}
