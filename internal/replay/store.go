// Package replay reads historical exports from object stores (S3, Google
// Cloud Storage, a local directory) and sends them through the same decode
// -> sink pipeline as the live stream, so a replayed event becomes the same
// Kafka message as the live one (only source-position differs).
//
// A replay plans which objects to read from the vendor's layout and the
// time window (OneWelcome Firehose hour folders, fulfillmenttools day
// folders, Infobip export names), streams each object (never whole in
// memory; several in flight), filters events on their time, and records
// its progress in a state file as batches are acknowledged (at most every
// SaveInterval), so an interrupted replay resumes where it stopped.
package replay

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Object is one stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
	// Version is the listing's version of the object (S3 ETag, GCS
	// generation; "" where the listing has none), used when a read's
	// answer names none.
	Version string
}

// Store is an object store: S3, GCS or a local directory.
type Store interface {
	// List calls fn for every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string, fn func(Object) error) error
	// Dirs lists the "sub-directories" directly under prefix (keys up to
	// the next '/', with it).
	Dirs(ctx context.Context, prefix string) ([]string, error)
	// Open streams an object's stored bytes from byte offset at.From
	// (compressed objects stay compressed: the framer gunzips by magic
	// bytes, exactly once). It returns the version it reads (an S3 ETag,
	// a GCS generation; "" where there is none); with at.Version set (what
	// an earlier Open of the object returned) it reads that version or
	// fails, so a read resumed after a network failure (see resumingReader)
	// never splices two versions of an object.
	Open(ctx context.Context, key string, at ReadAt) (rc io.ReadCloser, version string, err error)
	// Name is the store's URL without the prefix, e.g. "s3://bucket".
	Name() string
}

// storeHeaderTimeout bounds the wait for an S3 or GCS response's headers
// (and for each read of a GCS listing's body): a peer that accepts the
// connection and never answers fails the attempt, which is retried,
// instead of holding the replay forever.
const storeHeaderTimeout = 30 * time.Second

// ReadAt says where Open starts reading, and which version.
type ReadAt struct {
	From    int64
	Version string
}

// Location is a parsed replay URL.
type Location struct {
	Scheme string // "s3", "gs" or "file"
	Bucket string // bucket, or the directory for "file"
	Prefix string
}

// ParseLocation accepts s3://bucket/prefix, gs://bucket/prefix or a local
// directory path. The prefix is taken literally, as the AWS CLI and gsutil
// do: object keys may hold '#', '?' and '%', which a URL parser would read
// as a fragment, a query or an escape (and silently replay another prefix).
func ParseLocation(s string) (Location, error) {
	if !strings.Contains(s, "://") {
		return Location{Scheme: "file", Bucket: s}, nil
	}
	for _, scheme := range []string{"s3", "gs"} {
		if rest, ok := strings.CutPrefix(s, scheme+"://"); ok {
			bucket, prefix, _ := strings.Cut(rest, "/")
			if bucket == "" {
				return Location{}, fmt.Errorf("%q has no bucket", s)
			}
			return Location{Scheme: scheme, Bucket: bucket, Prefix: prefix}, nil
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("parsing %q: %w", s, err)
	}
	switch u.Scheme {
	case "file":
		return Location{Scheme: "file", Bucket: u.Path}, nil
	}
	return Location{}, fmt.Errorf("%q: want s3://bucket/prefix, gs://bucket/prefix or a directory", s)
}

func (l Location) String() string {
	if l.Scheme == "file" {
		return l.Bucket
	}
	return l.Scheme + "://" + l.Bucket + "/" + l.Prefix
}

// TenantFromLocation finds the fulfillmenttools tenant of a replay
// location, or "" when nothing is named like the export bucket
// ({tenant}-{tier}-public-events-export-bucket, optionally prefixed
// ocff- as in the vendor's gsutil example). For gs:// and s3:// it reads
// the bucket name; for a directory, the path components of its absolute
// path, nearest first, so a copy made with the vendor's
// `gsutil cp -r gs://ocff-<tenant>-<tier>-public-events-export-bucket ./`
// is found however the path is spelled (relative, absolute, ".", a
// trailing slash, or a day folder inside it).
func TenantFromLocation(loc Location) (string, error) {
	if loc.Scheme != "file" {
		return TenantFromBucket(loc.Bucket), nil
	}
	abs, err := filepath.Abs(loc.Bucket)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", loc.Bucket, err)
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		if t := TenantFromBucket(filepath.Base(dir)); t != "" {
			return t, nil
		}
		if filepath.Dir(dir) == dir {
			return "", nil
		}
	}
}
