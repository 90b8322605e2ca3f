// Package poll is the source for vendors that publish through paginated
// HTTP APIs: the Akeneo Event Platform logs and the Fluent Commerce Event
// API. A poller asks for a time window that overlaps the previous one,
// pages by timestamp (each page continues from the boundary of the one
// before, so entries moving or appearing meanwhile are not skipped; see
// pager.go), de-duplicates by event id across windows,
// delivers through the shared pipeline, and advances a durable cursor (the
// last fully delivered time plus the ids seen near it) only after the sink
// acknowledged.
package poll
