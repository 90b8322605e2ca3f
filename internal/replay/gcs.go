package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/backoff"
	"github.com/eventrelay/eventrelay/internal/retry"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// GCSStore reads a Google Cloud Storage bucket through the JSON API. The
// replay makes two requests and nothing else: objects.list and
// objects.get with alt=media. They are made here, over an HTTP client that
// golang.org/x/oauth2/google authenticates, rather than through
// google.golang.org/api, whose transport links gRPC, protobuf and
// OpenTelemetry into every run of the binary (BENCHMARKS.md, "binary").
type GCSStore struct {
	// HTTP sends the requests, authenticated (see NewGCSClient).
	HTTP *http.Client
	// Endpoint is the JSON API's base URL, e.g. GCSEndpoint.
	Endpoint string
	Bucket   string
	// Attempts bounds the tries of one listing page or object open on a
	// transient failure (429, 5xx, a network error); 0 means 5.
	Attempts int
}

// GCSEndpoint is the JSON API of Google Cloud Storage.
const GCSEndpoint = "https://storage.googleapis.com/storage/v1"

// gcsReadOnlyScope is the OAuth scope of the credentials.
const gcsReadOnlyScope = "https://www.googleapis.com/auth/devstorage.read_only"

// NewGCSClient returns the HTTP client and endpoint of a GCSStore: with a
// service-account key file (the fulfillmenttools export hands one out), or
// application default credentials when keyFile is empty. The key file must
// be a service-account key: a vendor-supplied file of another credential
// type (an external account, say, which makes the library fetch URLs or
// run commands it names) is refused. STORAGE_EMULATOR_HOST (e.g. a
// fake-gcs-server, as host:port or a URL) sends every request there
// without credentials. ctx bounds the token requests for the client's
// life: it must last as long as the client is used.
func NewGCSClient(ctx context.Context, keyFile string) (*http.Client, string, error) {
	return newGCSClient(ctx, keyFile, storeHeaderTimeout)
}

// newGCSClient is NewGCSClient with the wait for response headers.
func newGCSClient(ctx context.Context, keyFile string, headerTimeout time.Duration) (*http.Client, string, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = headerTimeout
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		return &http.Client{Transport: base}, strings.TrimSuffix(host, "/") + "/storage/v1", nil
	}
	// Token requests go through the same transport, so a stalled token
	// endpoint times out too.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: base, Timeout: headerTimeout})
	var src oauth2.TokenSource
	if keyFile != "" {
		// A key file that cannot be used is a configuration error (exit 2).
		key, err := readServiceAccountKey(keyFile)
		if err != nil {
			return nil, "", &invalidError{err}
		}
		conf, err := google.JWTConfigFromJSON(key, gcsReadOnlyScope)
		if err != nil {
			return nil, "", invalid("creating the GCS client from --gcs-key-file %s (a service-account key is required): %w", keyFile, err)
		}
		src = conf.TokenSource(ctx)
	} else {
		creds, err := google.FindDefaultCredentials(ctx, gcsReadOnlyScope)
		if err != nil {
			return nil, "", fmt.Errorf("creating the GCS client (no --gcs-key-file, and no application default credentials): %w", err)
		}
		src = creds.TokenSource
	}
	return &http.Client{Transport: &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, src), Base: base}}, GCSEndpoint, nil
}

// Name implements Store.
func (g GCSStore) Name() string { return "gs://" + g.Bucket }

// List implements Store.
func (g GCSStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	return g.pages(ctx, prefix, "", func(page *gcsObjects) error {
		for _, o := range page.Items {
			mod, _ := time.Parse(time.RFC3339Nano, o.Updated)
			if err := fn(Object{Key: o.Name, Size: int64(o.Size), Modified: mod, Version: string(o.Generation)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Dirs implements Store.
func (g GCSStore) Dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := g.pages(ctx, prefix, "/", func(page *gcsObjects) error {
		out = append(out, page.Prefixes...)
		return nil
	})
	return out, err
}

// gcsObjects is a page of objects.list, with the fields asked for.
type gcsObjects struct {
	Items []struct {
		Name       string   `json:"name"`
		Size       gcsInt64 `json:"size"`
		Updated    string   `json:"updated"`
		Generation string   `json:"generation"`
	} `json:"items"`
	Prefixes      []string `json:"prefixes"`
	NextPageToken string   `json:"nextPageToken"`
}

// gcsInt64 is a 64-bit integer, which the JSON API sends as a string.
type gcsInt64 int64

func (n *gcsInt64) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	*n = gcsInt64(v)
	return err
}

// pages lists the objects under prefix page by page; each page is asked
// again on a transient failure.
func (g GCSStore) pages(ctx context.Context, prefix, delim string, fn func(*gcsObjects) error) error {
	q := url.Values{"prefix": {prefix}, "fields": {"items(name,size,updated,generation),prefixes,nextPageToken"}}
	if delim != "" {
		q.Set("delimiter", delim)
	}
	for {
		var page gcsObjects
		err := g.retry(ctx, func() error {
			resp, err := g.get(ctx, g.objectsURL("")+"?"+q.Encode(), "")
			if err != nil {
				return err
			}
			body := newStallBody(resp.Body, storeHeaderTimeout) // a listing that stops mid-body fails, and is asked again
			defer body.Close()
			page = gcsObjects{}
			if err := json.NewDecoder(body).Decode(&page); err != nil {
				return fmt.Errorf("reading the listing: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("listing gs://%s/%s: %w", g.Bucket, prefix, err)
		}
		if err := fn(&page); err != nil {
			return err
		}
		if page.NextPageToken == "" {
			return nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// Open implements Store. It reads the stored bytes, as many as the
// listing's size says: an object stored with Content-Encoding: gzip is
// otherwise transcoded (served gunzipped). The request accepts gzip; set
// by hand, the header also keeps Go's transport from gunzipping the body.
// The framer gunzips by magic bytes, so the object is decompressed exactly
// once (the framer's offsets, and so the state's, count decompressed
// bytes; resumingReader's Range offsets count stored ones).
func (g GCSStore) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	q := url.Values{"alt": {"media"}}
	if at.Version != "" {
		q.Set("generation", at.Version)
	}
	var body io.ReadCloser
	var generation string
	err := g.retry(ctx, func() error {
		resp, err := g.getRange(ctx, g.objectsURL(key)+"?"+q.Encode(), "gzip", at.From)
		var apiErr *gcsError
		if at.Version != "" && errors.As(err, &apiErr) && (apiErr.Code == http.StatusNotFound || apiErr.Code == http.StatusPreconditionFailed) {
			return fmt.Errorf("%w: generation %s is gone (%v)", ErrObjectReplaced, at.Version, err)
		}
		if err != nil {
			return err
		}
		contentRange := resp.Header.Get("Content-Range")
		if at.From > 0 && resp.StatusCode != http.StatusPartialContent {
			contentRange = "" // a 200 is the whole object whatever the headers say
		}
		generation = resp.Header.Get("X-Goog-Generation")
		if err := checkAnswer(at, contentRange, generation); err != nil {
			resp.Body.Close()
			return err
		}
		body = resp.Body
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("reading gs://%s/%s: %w", g.Bucket, key, err)
	}
	return body, generation, nil
}

// objectsURL is the URL of the bucket's objects, or of the object key.
func (g GCSStore) objectsURL(key string) string {
	u := strings.TrimSuffix(g.Endpoint, "/") + "/b/" + url.PathEscape(g.Bucket) + "/o"
	if key != "" {
		u += "/" + url.PathEscape(key)
	}
	return u
}

// get sends one GET; an answer other than 2xx is returned as a *gcsError.
func (g GCSStore) get(ctx context.Context, u, acceptEncoding string) (*http.Response, error) {
	return g.getRange(ctx, u, acceptEncoding, 0)
}

// getRange is get from byte offset from on.
func (g GCSStore) getRange(ctx context.Context, u, acceptEncoding string, from int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "eventrelay")
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := g.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, newGCSError(resp)
	}
	return resp, nil
}

// gcsError is an answer of the JSON API other than 2xx.
type gcsError struct {
	Code    int
	Message string
}

func (e *gcsError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("gcs: HTTP %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("gcs: HTTP %d: %s", e.Code, e.Message)
}

// newGCSError reads the JSON API's error body ({"error": {"message": ...}})
// or, for another body, its first line.
func newGCSError(resp *http.Response) *gcsError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(b, &body) == nil {
		msg = body.Error.Message
	}
	if msg == "" {
		msg, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	return &gcsError{Code: resp.StatusCode, Message: msg}
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
// 429, most 5xx), a token endpoint answering so, or a network failure
// (retry.HTTP). A refused token (a revoked key) is not.
func gcsTransient(ctx context.Context, err error) bool {
	if errors.Is(err, errReadStalled) {
		return ctx.Err() == nil
	}
	var apiErr *gcsError
	if errors.As(err, &apiErr) {
		return retry.HTTPStatus(apiErr.Code)
	}
	var tokErr *oauth2.RetrieveError
	if errors.As(err, &tokErr) {
		return tokErr.Response != nil && retry.HTTPStatus(tokErr.Response.StatusCode)
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
