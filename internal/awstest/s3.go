package awstest

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is gofakes3 (in process) behind a SigV4-verifying proxy, so S3
// requests are checked and recorded like the Kinesis and DynamoDB ones.
// Clients use URL with path-style addressing.
type S3 struct {
	URL   string // proxied
	Proxy *SigningProxy

	backend *s3mem.Backend
}

// StartS3 starts the store for t; requests must be signed with credentials
// sts issued or accepts.
func StartS3(t testing.TB, sts *STS) *S3 {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	p := NewSigningProxy(t, srv.URL, sts)
	t.Cleanup(func() {
		if r := p.Rejected(); len(r) > 0 {
			t.Errorf("S3 requests with bad signatures: %v", r[:min(3, len(r))])
		}
	})
	return &S3{URL: p.URL, Proxy: p, backend: backend}
}

// Put stores an object straight into the backend (creating the bucket),
// bypassing the proxy: test data is not a request of the code under test.
func (s *S3) Put(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	if ok, err := s.backend.BucketExists(bucket); err != nil {
		t.Fatalf("checking bucket %s: %v", bucket, err)
	} else if !ok {
		if err := s.backend.CreateBucket(bucket); err != nil {
			t.Fatalf("creating bucket %s: %v", bucket, err)
		}
	}
	if _, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatalf("putting s3://%s/%s: %v", bucket, key, err)
	}
}
