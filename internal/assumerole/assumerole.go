// Package assumerole builds the AWS configuration of every client
// eventrelay makes (Kinesis, DynamoDB, S3): region, endpoint overrides for
// LocalStack-style stacks, and credentials. Base credentials come from the
// SDK's default chain (environment, shared config, or on Kubernetes the
// pod's web identity via IRSA); when a role is configured it is assumed on
// top of them with sts:AssumeRole and an external ID (role chaining),
// cached and refreshed before expiry.
//
// Credentials never reach logs: errors name the role and the likely cause
// (for example a wrong external ID) but not the secret values.
package assumerole

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/eventrelay/eventrelay/internal/secret"
)

// Config holds what every AWS client shares.
type Config struct {
	// Region of the clients. Default: the SDK's (AWS_REGION, shared config).
	Region string `yaml:"region"`
	// Endpoint overrides every service's endpoint (a LocalStack edge URL).
	Endpoint string `yaml:"endpoint"`
	// Endpoints override one service each and win over Endpoint.
	Endpoints Endpoints `yaml:"endpoints"`
}

// Endpoints are per-service endpoint overrides.
type Endpoints struct {
	STS      string `yaml:"sts"`
	Kinesis  string `yaml:"kinesis"`
	DynamoDB string `yaml:"dynamodb"`
	S3       string `yaml:"s3"`
}

// Service names for EndpointFor.
const (
	ServiceSTS      = "sts"
	ServiceKinesis  = "kinesis"
	ServiceDynamoDB = "dynamodb"
	ServiceS3       = "s3"
)

// EndpointFor returns the endpoint override for a service, or "" for AWS's default.
func (c Config) EndpointFor(service string) string {
	var e string
	switch service {
	case ServiceSTS:
		e = c.Endpoints.STS
	case ServiceKinesis:
		e = c.Endpoints.Kinesis
	case ServiceDynamoDB:
		e = c.Endpoints.DynamoDB
	case ServiceS3:
		e = c.Endpoints.S3
	}
	if e == "" {
		e = c.Endpoint
	}
	return e
}

// Role is a role to assume for one group of clients. The zero Role means
// "use the base credentials as they are".
type Role struct {
	// RoleARN to assume; empty uses the base credentials directly.
	RoleARN string `yaml:"role_arn"`
	// ExternalID the role's trust policy requires (sts:ExternalId). Prefer
	// ExternalIDFile; the value is never logged.
	ExternalID     secret.String `yaml:"external_id"`
	ExternalIDFile string        `yaml:"external_id_file"`
	// SessionName names the session in the customer's CloudTrail.
	// Default "eventrelay".
	SessionName string `yaml:"session_name"`
	// Duration of the session. Default 15m (the STS minimum); at most 12h.
	Duration time.Duration `yaml:"duration"`
	// RefreshBefore refreshes credentials this long before they expire, so
	// no request is made with expiring credentials. Default 2m.
	RefreshBefore time.Duration `yaml:"refresh_before"`
}

// WithDefaults fills the zero fields of a role that is assumed (RoleARN
// set) with the defaults in their comments; the zero Role stays zero.
// config.Load applies it; applying it again changes nothing.
func (r Role) WithDefaults() Role {
	if r.RoleARN == "" {
		return r
	}
	r.SessionName = orDefault(r.SessionName, "eventrelay")
	if r.Duration == 0 {
		r.Duration = 15 * time.Minute
	}
	if r.RefreshBefore == 0 {
		r.RefreshBefore = 2 * time.Minute
	}
	return r
}

// Validate checks the role, naming fields under prefix (e.g. "aws.stream").
func (r Role) Validate(prefix string) error {
	var errs []error
	if r.RoleARN != "" && !strings.HasPrefix(r.RoleARN, "arn:") {
		errs = append(errs, fmt.Errorf("%s.role_arn: %q is not an ARN (arn:aws:iam::<account>:role/<name>)", prefix, r.RoleARN))
	}
	if r.RoleARN == "" && (r.ExternalID != "" || r.ExternalIDFile != "") {
		errs = append(errs, fmt.Errorf("%s.external_id: set without %s.role_arn", prefix, prefix))
	}
	if r.ExternalID != "" && r.ExternalIDFile != "" {
		errs = append(errs, fmt.Errorf("%s.external_id_file: set together with %s.external_id; use one", prefix, prefix))
	}
	if r.Duration != 0 && (r.Duration < 15*time.Minute || r.Duration > 12*time.Hour) {
		errs = append(errs, fmt.Errorf("%s.duration: must be between 15m and 12h, got %s", prefix, r.Duration))
	}
	if d := r.WithDefaults(); r.RoleARN != "" && (d.RefreshBefore <= 0 || d.RefreshBefore >= d.Duration) {
		errs = append(errs, fmt.Errorf("%s.refresh_before: must be positive and below %s.duration (%s), got %s", prefix, prefix, d.Duration, d.RefreshBefore))
	}
	return errors.Join(errs...)
}

// ErrAccessDenied is returned (wrapped) when STS refuses to assume the role.
var ErrAccessDenied = errors.New("access denied")

// Credentials is an assumed (or base) credential source that remembers
// whether its last refresh worked, for readiness.
type Credentials struct {
	role   string
	inner  aws.CredentialsProvider
	health *health
}

// Load builds the aws.Config for a role: base credentials from the default
// chain, then AssumeRole with the external ID when role.RoleARN is set. It
// retrieves credentials once so a wrong role or external ID fails here,
// at startup, with an error saying which role and why.
func Load(ctx context.Context, c Config, role Role) (aws.Config, *Credentials, error) {
	opts := []func(*config.LoadOptions) error{
		// A buildable client works whether or not AWS_CA_BUNDLE is set.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(30 * time.Second)),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if sts := c.EndpointFor(ServiceSTS); sts != "" {
		// The web-identity provider of the default chain must reach the same STS.
		opts = append(opts, config.WithWebIdentityRoleCredentialOptions(func(o *stscreds.WebIdentityRoleOptions) {
			o.Client = stsClient(aws.Config{Region: regionOr(c.Region), HTTPClient: &http.Client{Timeout: 30 * time.Second}}, sts)
		}))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if base.Region == "" {
		base.Region = "us-east-1"
	}
	creds := &Credentials{role: role.RoleARN, inner: base.Credentials, health: &health{}}
	if role.RoleARN != "" {
		externalID, err := role.externalID("external_id_file")
		if err != nil {
			return aws.Config{}, nil, err
		}
		provider := stscreds.NewAssumeRoleProvider(stsClient(base, c.EndpointFor(ServiceSTS)), role.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = orDefault(role.SessionName, "eventrelay")
			o.Duration = role.Duration
			if o.Duration == 0 {
				o.Duration = 15 * time.Minute
			}
			if externalID != "" {
				o.ExternalID = aws.String(externalID)
			}
		})
		creds.inner = provider
	}
	refresh := role.RefreshBefore
	if refresh == 0 {
		refresh = 2 * time.Minute
	}
	cfg := base.Copy()
	cfg.Credentials = aws.NewCredentialsCache(creds, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = refresh })
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, nil, err
	}
	return cfg, creds, nil
}

// Retrieve implements aws.CredentialsProvider, recording the outcome and
// turning STS refusals into errors that say what to check.
func (c *Credentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.inner.Retrieve(ctx)
	if err != nil {
		err = c.explain(err)
	}
	c.health.record(err)
	return v, err
}

// Healthy returns the error of the last refresh, or nil if it worked.
func (c *Credentials) Healthy() error { return c.health.err() }

func (c *Credentials) explain(err error) error {
	if c.role == "" {
		return fmt.Errorf("retrieving base AWS credentials (environment, shared config or web identity): %w", err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "AccessDeniedException") {
		return fmt.Errorf("assuming role %s: %w: the role's trust policy refused this caller; check that the external ID matches the one the role requires and that the role trusts the base identity (sts %s)",
			c.role, ErrAccessDenied, ae.ErrorCode())
	}
	return fmt.Errorf("assuming role %s: %w", c.role, err)
}

// CheckFiles reads external_id_file, when the role is assumed, as Load
// does; errors name the setting under prefix (e.g. "aws.stream_role").
func (r Role) CheckFiles(prefix string) error {
	if r.RoleARN == "" {
		return nil
	}
	_, err := r.externalID(prefix + ".external_id_file")
	return err
}

// externalID is the external ID, read from ExternalIDFile when that is
// set; field names the setting in errors.
func (r Role) externalID(field string) (string, error) {
	if r.ExternalIDFile == "" {
		return r.ExternalID.Reveal(), nil
	}
	id, err := secret.FromFile(field, r.ExternalIDFile)
	return id.Reveal(), err
}

func stsClient(cfg aws.Config, endpoint string) *sts.Client {
	return sts.NewFromConfig(cfg, func(o *sts.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

func regionOr(r string) string {
	if r == "" {
		if r = os.Getenv("AWS_REGION"); r == "" {
			return "us-east-1"
		}
	}
	return r
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
