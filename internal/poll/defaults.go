package poll

// WithDefaults fills zero fields with the defaults in their comments
// (interval 1m, overlap 10m, start 24h, page_size 100, timeout 30s,
// max_body_size 64 MiB, once_attempts 8).
// Applying it again changes nothing.
func (c Common) WithDefaults() Common { return c.withDefaults() }
