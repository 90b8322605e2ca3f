package assumerole

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/awstest"
	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/rs/zerolog"
)

const (
	roleARN    = "arn:aws:iam::111122223333:role/onewelcome-stream-reader"
	externalID = "ext-7f3a9c2e-secret"
	baseKey    = "AKIDBASEEXAMPLE"
	baseSecret = "base-secret-do-not-log"
)

func setBaseKeys(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", baseKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", baseSecret)
}

func newSTS(t *testing.T) *awstest.STS {
	return awstest.NewSTS(t, roleARN, externalID, awstest.Issued{AccessKeyID: baseKey, Secret: baseSecret})
}

func TestAssumeRoleSignsLaterRequests(t *testing.T) {
	awstest.IsolateEnv(t)
	setBaseKeys(t)
	sts := newSTS(t)
	kin := awstest.StartKinesis(t)
	ddb := awstest.StartDynamoDB(t)
	kinProxy := awstest.NewSigningProxy(t, kin.URL, sts)
	ddbProxy := awstest.NewSigningProxy(t, ddb.URL, sts)
	ctx := context.Background()

	cfg, _, err := Load(ctx, Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalID: secret.String(externalID), SessionName: "relay-test", Duration: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	calls := sts.Calls()
	if len(calls) != 1 || calls[0].Action != "AssumeRole" || calls[0].SignedBy != baseKey {
		t.Fatalf("STS calls = %+v, want one AssumeRole signed by the base key", calls)
	}
	p := calls[0].Params
	for k, want := range map[string]string{"RoleArn": roleARN, "ExternalId": externalID, "RoleSessionName": "relay-test", "DurationSeconds": "1200", "Version": "2011-06-15"} {
		if p.Get(k) != want {
			t.Errorf("AssumeRole %s = %q, want %q", k, p.Get(k), want)
		}
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kinProxy.URL) })
	if _, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("kinesis through the verifying proxy: %v (rejected: %v)", err, kinProxy.Rejected())
	}
	dc := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddbProxy.URL) })
	if _, err := dc.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("dynamodb through the verifying proxy: %v (rejected: %v)", err, ddbProxy.Rejected())
	}
	for name, used := range map[string]map[string]int{"kinesis": kinProxy.Used(), "dynamodb": ddbProxy.Used()} {
		if len(used) != 1 || used[baseKey] > 0 {
			t.Errorf("%s requests signed by %v, want only the assumed role's key", name, used)
		}
		for akid := range used {
			if !strings.HasPrefix(akid, "ASIA") {
				t.Errorf("%s signed by %s, not an STS-issued key", name, akid)
			}
		}
	}
}

func TestRefreshBeforeExpiryWithoutFailedRequest(t *testing.T) {
	awstest.IsolateEnv(t)
	setBaseKeys(t)
	sts := newSTS(t)
	sts.SetLifetime(3 * time.Second)
	kin := awstest.StartKinesis(t)
	proxy := awstest.NewSigningProxy(t, kin.URL, sts)
	ctx := context.Background()
	cfg, creds, err := Load(ctx, Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalID: secret.String(externalID), RefreshBefore: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(proxy.URL) })
	end := time.Now().Add(7 * time.Second)
	n := 0
	for time.Now().Before(end) {
		if _, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatalf("request %d failed: %v", n, err)
		}
		n++
		time.Sleep(100 * time.Millisecond)
	}
	if r := proxy.Rejected(); len(r) > 0 {
		t.Fatalf("requests rejected: %v", r)
	}
	assumes := 0
	for _, c := range sts.Calls() {
		if c.Action == "AssumeRole" && c.Status == 200 {
			assumes++
		}
	}
	if assumes < 3 || len(proxy.Used()) < 3 {
		t.Errorf("%d AssumeRole calls and %d keys used over 7s of 3s credentials, want >= 3 each", assumes, len(proxy.Used()))
	}
	if creds.Healthy() != nil {
		t.Errorf("healthy = %v", creds.Healthy())
	}
	t.Logf("%d requests, %d AssumeRole calls, none failed", n, assumes)
}

func TestWrongExternalIDFailsFastWithoutSecrets(t *testing.T) {
	awstest.IsolateEnv(t)
	setBaseKeys(t)
	sts := newSTS(t)
	idFile := filepath.Join(t.TempDir(), "external-id")
	os.WriteFile(idFile, []byte("wrong-external-id-value\n"), 0o600)
	_, _, err := Load(context.Background(), Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalIDFile: idFile})
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
	msg := err.Error()
	for _, want := range []string{roleARN, "external ID"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	for _, secret := range []string{"wrong-external-id-value", externalID, baseSecret} {
		if strings.Contains(msg, secret) {
			t.Errorf("error leaks a secret: %q", msg)
		}
	}
}

// TestRoleChainingFromWebIdentity is the Kubernetes (IRSA) path: the pod's
// web identity token gives base credentials, which then assume the
// customer's role with the external ID.
func TestRoleChainingFromWebIdentity(t *testing.T) {
	awstest.IsolateEnv(t)
	sts := newSTS(t)
	sts.WebIdentityRoleARN = "arn:aws:iam::999988887777:role/eventrelay-pod"
	sts.WebIdentityToken = "eyJhbGciOiJSUzI1NiJ9.pod-token.sig"
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(sts.WebIdentityToken), 0o600)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ROLE_ARN", sts.WebIdentityRoleARN)
	t.Setenv("AWS_ROLE_SESSION_NAME", "pod-session")

	_, _, err := Load(context.Background(), Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalID: secret.String(externalID)})
	if err != nil {
		t.Fatal(err)
	}
	calls := sts.Calls()
	if len(calls) != 2 || calls[0].Action != "AssumeRoleWithWebIdentity" || calls[1].Action != "AssumeRole" {
		t.Fatalf("STS calls = %+v, want web identity then AssumeRole", calls)
	}
	if calls[1].SignedBy == "" || calls[1].SignedBy == baseKey || calls[1].Status != 200 {
		t.Errorf("AssumeRole signed by %q (status %d), want the web identity's key", calls[1].SignedBy, calls[1].Status)
	}
}

// TestRefreshFailureMarksUnhealthyAndRecovers: after startup the role's
// external ID changes (as if rotated); Watch logs the failure without
// secrets, Healthy reports it, and it recovers once STS accepts again.
func TestRefreshFailureMarksUnhealthyAndRecovers(t *testing.T) {
	awstest.IsolateEnv(t)
	setBaseKeys(t)
	sts := newSTS(t)
	sts.SetLifetime(2 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, creds, err := Load(ctx, Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalID: secret.String(externalID), RefreshBefore: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.TraceLevel)
	go Watch(ctx, cfg.Credentials, creds, 200*time.Millisecond, log)
	sts.SetExternalID("rotated-id")
	testwait.Until(t, 20*time.Second, "the credentials to turn unhealthy", func() bool { return creds.Healthy() != nil })
	if !errors.Is(creds.Healthy(), ErrAccessDenied) {
		t.Errorf("healthy = %v", creds.Healthy())
	}
	sts.SetExternalID(externalID)
	testwait.Until(t, 20*time.Second, "the credentials to recover", func() bool { return creds.Healthy() == nil })
	out := logs.String()
	if !strings.Contains(out, "refreshing AWS credentials failed") {
		t.Errorf("failure not logged:\n%s", out)
	}
	for _, secret := range []string{externalID, baseSecret, "token-"} {
		if strings.Contains(out, secret) {
			t.Errorf("log leaks %q:\n%s", secret, out)
		}
	}
}

func TestRoleValidate(t *testing.T) {
	tests := []struct {
		r    Role
		want string
	}{
		{Role{}, ""},
		{Role{RoleARN: roleARN, ExternalIDFile: "/x"}, ""},
		{Role{RoleARN: "onewelcome"}, "aws.stream.role_arn"},
		{Role{ExternalID: "x"}, "aws.stream.external_id: set without aws.stream.role_arn"},
		{Role{RoleARN: roleARN, ExternalID: "a", ExternalIDFile: "b"}, "aws.stream.external_id_file"},
		{Role{RoleARN: roleARN, Duration: time.Minute}, "aws.stream.duration"},
		{Role{RoleARN: roleARN, RefreshBefore: -time.Minute}, "aws.stream.refresh_before: must be positive and below aws.stream.duration (15m0s), got -1m0s"},
		{Role{RoleARN: roleARN, Duration: time.Hour, RefreshBefore: time.Hour}, "aws.stream.refresh_before: must be positive and below aws.stream.duration (1h0m0s), got 1h0m0s"},
	}
	for _, tc := range tests {
		err := tc.r.Validate("aws.stream")
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: err = %v, want %q", tc.r, err, tc.want)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestExternalIDFile: the file's line ending is not part of the external
// ID; an empty file fails before STS is called, naming the setting.
func TestExternalIDFile(t *testing.T) {
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"CRLF", externalID + "\r\n", ""},
		{"no newline", externalID, ""},
		{"empty", "", "external_id_file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			awstest.IsolateEnv(t)
			setBaseKeys(t)
			sts := newSTS(t)
			idFile := filepath.Join(t.TempDir(), "external-id")
			os.WriteFile(idFile, []byte(tc.content), 0o600)
			_, _, err := Load(context.Background(), Config{Endpoints: Endpoints{STS: sts.URL}}, Role{RoleARN: roleARN, ExternalIDFile: idFile})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || len(sts.Calls()) != 0):
				t.Fatalf("err = %v, %d STS calls; want %q before any call", err, len(sts.Calls()), tc.wantErr)
			}
		})
	}
}
