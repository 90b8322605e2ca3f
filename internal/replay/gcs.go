package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/retry"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	storage "google.golang.org/api/storage/v1"
	htransport "google.golang.org/api/transport/http"
)

// GCSStore reads a Google Cloud Storage bucket through the JSON API
// (google.golang.org/api/storage/v1). The replay lists and reads objects
// and nothing else: the JSON API client does that without the gRPC and
// xDS stack cloud.google.com/go/storage links into every run of the binary.
type GCSStore struct {
	Service *storage.Service
	// HTTP is the authenticated client the Service uses; object reads go
	// through it directly (see Open).
	HTTP   *http.Client
	Bucket string
	// Attempts bounds the tries of one listing page or object open on a
	// transient failure (429, 5xx, a network error); 0 means 5.
	Attempts int
}

// NewGCSClient makes a JSON API client from a service-account key file
// (the fulfillmenttools export hands one out), or application default
// credentials when keyFile is empty. The key file must be a service-account
// key: a vendor-supplied file of another credential type (an external
// account, say, which makes the library fetch URLs or run commands it
// names) is refused. STORAGE_EMULATOR_HOST (e.g. a fake-gcs-server, as
// host:port or a URL) sends every request there without credentials.
func NewGCSClient(ctx context.Context, keyFile string) (*storage.Service, *http.Client, error) {
	opts := []option.ClientOption{option.WithScopes(storage.DevstorageReadOnlyScope)}
	switch host := os.Getenv("STORAGE_EMULATOR_HOST"); {
	case host != "":
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		opts = append(opts, option.WithoutAuthentication(), option.WithEndpoint(strings.TrimSuffix(host, "/")+"/storage/v1/"))
	case keyFile != "":
		key, err := readServiceAccountKey(keyFile)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, option.WithAuthCredentialsJSON(option.ServiceAccount, key))
	}
	hc, endpoint, err := htransport.NewClient(ctx, opts...)
	if err == nil {
		if endpoint != "" {
			opts = append(opts, option.WithEndpoint(endpoint))
		}
		var s *storage.Service
		if s, err = storage.NewService(ctx, append(opts, option.WithHTTPClient(hc))...); err == nil {
			return s, hc, nil
		}
	}
	if keyFile != "" {
		return nil, nil, fmt.Errorf("creating the GCS client from --gcs-key-file %s (a service-account key is required): %w", keyFile, err)
	}
	return nil, nil, fmt.Errorf("creating the GCS client: %w", err)
}

// Name implements Store.
func (g GCSStore) Name() string { return "gs://" + g.Bucket }

// List implements Store.
func (g GCSStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	return g.pages(ctx, prefix, "", func(page *storage.Objects) error {
		for _, o := range page.Items {
			mod, _ := time.Parse(time.RFC3339Nano, o.Updated)
			if err := fn(Object{Key: o.Name, Size: int64(o.Size), Modified: mod}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Dirs implements Store.
func (g GCSStore) Dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := g.pages(ctx, prefix, "/", func(page *storage.Objects) error {
		out = append(out, page.Prefixes...)
		return nil
	})
	return out, err
}

// pages lists the objects under prefix page by page; each page is asked
// again on a transient failure.
func (g GCSStore) pages(ctx context.Context, prefix, delim string, fn func(*storage.Objects) error) error {
	token := ""
	for {
		var page *storage.Objects
		err := g.retry(ctx, func() (err error) {
			call := g.Service.Objects.List(g.Bucket).Prefix(prefix).Fields("items(name,size,updated),prefixes,nextPageToken")
			if delim != "" {
				call = call.Delimiter(delim)
			}
			if token != "" {
				call = call.PageToken(token)
			}
			page, err = call.Context(ctx).Do()
			return err
		})
		if err != nil {
			return fmt.Errorf("listing gs://%s/%s: %w", g.Bucket, prefix, err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if token = page.NextPageToken; token == "" {
			return nil
		}
	}
}

// Open implements Store. It reads the stored bytes, as many as the
// listing's size says: an object stored with Content-Encoding: gzip is
// otherwise transcoded (served gunzipped). The request accepts gzip, which
// the generated client does not allow, so it is made here with the
// client's authenticated HTTP client; set by hand, the header also keeps
// Go's transport from gunzipping the body. The framer gunzips by magic
// bytes, so the object is decompressed exactly once, and byte offsets in
// the replay state are offsets in the stored object.
func (g GCSStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	u := strings.TrimSuffix(g.Service.BasePath, "/") + "/b/" + url.PathEscape(g.Bucket) + "/o/" + url.PathEscape(key) + "?alt=media"
	var body io.ReadCloser
	err := g.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := g.HTTP.Do(req)
		if err != nil {
			return err
		}
		if err := googleapi.CheckMediaResponse(resp); err != nil {
			resp.Body.Close()
			return err
		}
		body = resp.Body
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading gs://%s/%s: %w", g.Bucket, key, err)
	}
	return body, nil
}

// retry runs op until it succeeds, fails for good, or Attempts are used.
func (g GCSStore) retry(ctx context.Context, op func() error) error {
	attempts := g.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	for a := 1; ; a++ {
		err := op()
		if err == nil || a >= attempts || !gcsTransient(ctx, err) {
			return err
		}
		if err := backoff.Sleep(ctx, backoff.Delay(a, 200*time.Millisecond, 5*time.Second)); err != nil {
			return err
		}
	}
}

// gcsTransient: a JSON API answer worth asking again (retry.HTTPStatus:
// 429, most 5xx) or a network failure (retry.HTTP).
func gcsTransient(ctx context.Context, err error) bool {
	var apiErr *googleapi.Error
	if errors.As(err, &apiErr) {
		return retry.HTTPStatus(apiErr.Code)
	}
	return retry.HTTP(ctx, err)
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
