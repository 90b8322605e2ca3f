package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCSStore reads a Google Cloud Storage bucket.
type GCSStore struct {
	Client *storage.Client
	Bucket string
}

// NewGCSClient makes a client from a service-account key file (the
// fulfillmenttools export hands one out), or application default
// credentials when keyFile is empty. The key file must be a service-account
// key: a vendor-supplied file of another credential type (an external
// account, say, which makes the library fetch URLs or run commands it
// names) is refused. STORAGE_EMULATOR_HOST (e.g. a fake-gcs-server) is
// honoured by the library and needs no credentials.
func NewGCSClient(ctx context.Context, keyFile string) (*storage.Client, error) {
	var opts []option.ClientOption
	switch {
	case os.Getenv("STORAGE_EMULATOR_HOST") != "":
		opts = append(opts, option.WithoutAuthentication())
	case keyFile != "":
		key, err := readServiceAccountKey(keyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, key))
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		if keyFile != "" {
			return nil, fmt.Errorf("creating the GCS client from --gcs-key-file %s (a service-account key is required): %w", keyFile, err)
		}
		return nil, fmt.Errorf("creating the GCS client: %w", err)
	}
	return c, nil
}

// Name implements Store.
func (g GCSStore) Name() string { return "gs://" + g.Bucket }

// List implements Store.
func (g GCSStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	it := g.Client.Bucket(g.Bucket).Objects(ctx, &storage.Query{Prefix: prefix})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing gs://%s/%s: %w", g.Bucket, prefix, err)
		}
		if err := fn(Object{Key: a.Name, Size: a.Size, Modified: a.Updated}); err != nil {
			return err
		}
	}
}

// Dirs implements Store.
func (g GCSStore) Dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	it := g.Client.Bucket(g.Bucket).Objects(ctx, &storage.Query{Prefix: prefix, Delimiter: "/"})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing gs://%s/%s: %w", g.Bucket, prefix, err)
		}
		if a.Prefix != "" {
			out = append(out, a.Prefix)
		}
	}
}

// Open implements Store. It reads the stored bytes (ReadCompressed): an
// object stored with Content-Encoding: gzip would otherwise be transcoded
// (served gunzipped) by GCS; the framer gunzips by magic bytes, so either
// way the object is decompressed exactly once.
func (g GCSStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := g.Client.Bucket(g.Bucket).Object(key).ReadCompressed(true).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading gs://%s/%s: %w", g.Bucket, key, err)
	}
	return r, nil
}

// readServiceAccountKey reads a key file and checks that it is a
// service-account key before the library sees it (the library would only
// find out at the first request).
func readServiceAccountKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --gcs-key-file: %w", err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("--gcs-key-file %s is not a JSON credentials file (a service-account key is required): %w", path, err)
	}
	if head.Type != "service_account" {
		return nil, fmt.Errorf("--gcs-key-file %s holds %q credentials (a service-account key is required: \"type\": \"service_account\")", path, head.Type)
	}
	return data, nil
}
