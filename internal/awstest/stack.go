package awstest

import (
	"path/filepath"
	"testing"
)

// Stack is a local AWS: kinesis-local and dynalite behind SigV4-verifying
// proxies, and an STS server whose role requires an external ID. Base
// credentials are set in the test's environment (and isolated from the
// machine's), so code under test uses the SDK's default chain as in
// production.
type Stack struct {
	STS         *STS
	KinesisURL  string // proxied
	DynamoDBURL string // proxied
	Role        string
	ExternalID  string
	BaseKey     string
	BaseSecret  string
	proxies     []*SigningProxy
	// KinesisProxy and DynamoDBProxy can inject faults into the calls.
	KinesisProxy  *SigningProxy
	DynamoDBProxy *SigningProxy
	// Kinesis and DynamoDB are the emulator processes (to pause them).
	Kinesis, DynamoDB *Emulator
	// FanOut serves SubscribeToShard once StartFanOut put it in front.
	FanOut *FanOut
}

// StartStack starts the stack for t.
func StartStack(t testing.TB) *Stack {
	t.Helper()
	s := &Stack{Role: "arn:aws:iam::111122223333:role/onewelcome-stream", ExternalID: "onewelcome-external-id",
		BaseKey: "AKIDBASEEXAMPLE", BaseSecret: "base-secret-never-logged"}
	IsolateEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.BaseKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.BaseSecret)
	s.STS = NewSTS(t, s.Role, s.ExternalID, Issued{AccessKeyID: s.BaseKey, Secret: s.BaseSecret})
	kin, ddb := StartKinesis(t), StartDynamoDB(t)
	s.Kinesis, s.DynamoDB = kin, ddb
	kp, dp := NewSigningProxy(t, kin.URL, s.STS), NewSigningProxy(t, ddb.URL, s.STS)
	s.KinesisURL, s.DynamoDBURL, s.proxies, s.KinesisProxy, s.DynamoDBProxy = kp.URL, dp.URL, []*SigningProxy{kp, dp}, kp, dp
	t.Cleanup(func() {
		for _, p := range s.proxies {
			if r := p.Rejected(); len(r) > 0 {
				t.Errorf("requests with bad signatures: %v", r[:min(3, len(r))])
			}
		}
	})
	return s
}

// Env is the environment a child process needs to use the stack through
// eventrelay's configuration (credentials plus EVENTRELAY_AWS_* settings).
func (s *Stack) Env(externalID string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.BaseKey, "AWS_SECRET_ACCESS_KEY=" + s.BaseSecret, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"EVENTRELAY_AWS_REGION=us-east-1", "EVENTRELAY_AWS_ENDPOINTS_STS=" + s.STS.URL,
		"EVENTRELAY_AWS_ENDPOINTS_KINESIS=" + s.KinesisURL, "EVENTRELAY_AWS_ENDPOINTS_DYNAMODB=" + s.DynamoDBURL,
		"EVENTRELAY_AWS_STREAM_ROLE_ROLE_ARN=" + s.Role, "EVENTRELAY_AWS_STREAM_ROLE_EXTERNAL_ID=" + externalID,
	}
}

// IsolateEnv clears the AWS settings of the machine from the test's
// environment so only what the test sets is used.
func IsolateEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
}
