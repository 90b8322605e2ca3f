package poll

import (
	"errors"
	"fmt"
	"time"
)

// WithDefaults fills zero fields with the defaults in their comments
// (interval 1m, overlap 10m, start 24h, page_size 100, timeout 30s,
// max_body_size 64 MiB, once_attempts 8).
// Applying it again changes nothing.
func (c Common) WithDefaults() Common { return c.withDefaults() }

// Validate checks the shared settings after defaults, naming each field
// under prefix (source.akeneo, source.fluent).
func (c Common) Validate(prefix string) error {
	c = c.withDefaults()
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.Interval}, {"overlap", c.Overlap}, {"start", c.Start}, {"timeout", c.Timeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s.%s: must be positive, got %s", prefix, d.name, d.v))
		}
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"page_size", int64(c.PageSize)}, {"max_body_size", c.MaxBodySize}, {"once_attempts", int64(c.OnceAttempts)}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s.%s: must be positive, got %d", prefix, d.name, d.v))
		}
	}
	return errors.Join(errs...)
}
