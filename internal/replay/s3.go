package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Store reads a bucket with aws-sdk-go-v2.
type S3Store struct {
	Client *s3.Client
	Bucket string
	// BodyHTTP reads object bodies (BodyHTTPClient); nil: the client's.
	BodyHTTP aws.HTTPClient
}

// NewS3Client makes an S3 client from an aws.Config (credentials from
// internal/assumerole); endpoint overrides for local stacks use path-style
// addressing, and checksums are only computed where required.
func NewS3Client(cfg aws.Config, endpoint string) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
}

// Name implements Store.
func (s S3Store) Name() string { return "s3://" + s.Bucket }

// List implements Store.
func (s S3Store) List(ctx context.Context, prefix string, fn func(Object) error) error {
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing s3://%s/%s: %w", s.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified), Version: aws.ToString(o.ETag)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Dirs implements Store.
func (s S3Store) Dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing s3://%s/%s: %w", s.Bucket, prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	return out, nil
}

// Open implements Store.
// The body is read with BodyHTTP when set: the configuration's client
// bounds whole requests (30 s), which a body read at the pace of Kafka
// must not be; resumingReader bounds each read instead.
func (s S3Store) Open(ctx context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)}
	if at.From > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", at.From))
	}
	if at.Version != "" {
		in.IfMatch = aws.String(at.Version)
	}
	out, err := s.Client.GetObject(ctx, in, func(o *s3.Options) {
		if s.BodyHTTP != nil {
			o.HTTPClient = s.BodyHTTP
		}
	})
	var re *awshttp.ResponseError
	if err != nil && at.Version != "" && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed {
		err = fmt.Errorf("%w: its ETag is no longer %s", ErrObjectReplaced, at.Version)
	}
	if err != nil {
		return nil, "", fmt.Errorf("getting s3://%s/%s: %w", s.Bucket, key, err)
	}
	etag := aws.ToString(out.ETag)
	if err := checkAnswer(at, aws.ToString(out.ContentRange), etag); err != nil {
		out.Body.Close()
		return nil, "", fmt.Errorf("getting s3://%s/%s: %w", s.Bucket, key, err)
	}
	return out.Body, etag, nil
}

// checkAnswer checks that a store answered what was asked: the bytes from
// at.From on (contentRange "bytes N-M/T"; a store may ignore Range and
// send the whole object, which read at the offset would splice) and the
// version asked for.
func checkAnswer(at ReadAt, contentRange, version string) error {
	if at.From > 0 && !strings.HasPrefix(contentRange, fmt.Sprintf("bytes %d-", at.From)) {
		return fmt.Errorf("asked for the bytes from %d on, the store answered %q: not reading on from another place", at.From, contentRange)
	}
	if at.Version != "" && version != "" && version != at.Version {
		return fmt.Errorf("%w: asked for version %s, the store answered %s", ErrObjectReplaced, at.Version, version)
	}
	return nil
}

// BodyHTTPClient is the HTTP client for object bodies derived from the
// configuration's: the same transport settings (a CA bundle included), no
// bound on the whole request, and headerTimeout for the response headers.
func BodyHTTPClient(cfg aws.Config, headerTimeout time.Duration) aws.HTTPClient {
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok || b == nil {
		b = awshttp.NewBuildableClient()
	}
	return b.WithTimeout(0).WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = headerTimeout })
}
