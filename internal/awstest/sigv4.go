package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// VerifySigV4 checks r's AWS Signature Version 4 by signing the same
// request again with the secret lookup returns for its access key. It
// returns the access key id. Expired credentials are refused as AWS does.
func VerifySigV4(r *http.Request, body []byte, lookup func(akid string) (Issued, bool)) (string, error) {
	auth := r.Header.Get("Authorization")
	const prefix = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, prefix) {
		return "", fmt.Errorf("request is not SigV4-signed")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, prefix), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 {
		return "", fmt.Errorf("malformed credential scope %q", fields["Credential"])
	}
	akid, region, service := scope[0], scope[2], scope[3]
	key, ok := lookup(akid)
	if !ok {
		return akid, fmt.Errorf("unknown access key %s", akid)
	}
	if !key.Expires.IsZero() && time.Now().After(key.Expires) {
		return akid, fmt.Errorf("ExpiredToken: the security token included in the request is expired")
	}
	if key.Token != "" && r.Header.Get("X-Amz-Security-Token") != key.Token {
		return akid, fmt.Errorf("the security token does not belong to %s", akid)
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return akid, fmt.Errorf("bad X-Amz-Date: %w", err)
	}
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	again.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" && h != "x-amz-date" && h != "x-amz-security-token" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	again.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: key.Secret, SessionToken: key.Token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), service, region, signedAt); err != nil {
		return akid, err
	}
	if got := again.Header.Get("Authorization"); got != auth {
		return akid, fmt.Errorf("SignatureDoesNotMatch for %s", akid)
	}
	return akid, nil
}
