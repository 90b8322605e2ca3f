package replay

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestGCSKeyFileMustBeServiceAccount: --gcs-key-file accepts the
// service-account key the fulfillmenttools export hands out and refuses
// every other credential type (an external_account file makes the library
// fetch URLs or run executables named in it).
func TestGCSKeyFileMustBeServiceAccount(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, key)}))
	files := []struct {
		name string
		body map[string]any
		ok   bool
	}{
		{"service_account", map[string]any{"type": "service_account", "project_id": "ocff-acme-prd", "private_key_id": "k1",
			"private_key": pemKey, "client_email": "export-reader@ocff-acme-prd.iam.gserviceaccount.com", "client_id": "1",
			"token_uri": "http://127.0.0.1:1/token"}, true},
		{"external_account", map[string]any{"type": "external_account", "audience": "//iam.googleapis.com/x",
			"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "http://127.0.0.1:1/token",
			"credential_source": map[string]any{"executable": map[string]any{"command": "/bin/sh -c id"}}}, false},
		{"authorized_user", map[string]any{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}, false},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			data, _ := json.Marshal(f.body)
			path := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := NewGCSClient(context.Background(), path)
			if f.ok && err != nil {
				t.Fatalf("a service-account key was refused: %v", err)
			}
			if !f.ok {
				if err == nil {
					t.Fatalf("a %s credentials file was accepted as --gcs-key-file", f.name)
				}
				if !strings.Contains(err.Error(), "service-account key is required") {
					t.Errorf("error does not say what is required: %v", err)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("a wrong key file is not a configuration error (ErrInvalid, exit 2): %v", err)
				}
			}
		})
	}
	_, _, err = NewGCSClient(context.Background(), filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--gcs-key-file") {
		t.Errorf("a missing key file: %v, want a configuration error (ErrInvalid) naming --gcs-key-file", err)
	}
}

func mustPKCS8(t *testing.T, k *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGCSServiceAccountAuth: with a service-account key the store signs a
// JWT with the key's private key, trades it at the key's token_uri for an
// access token (the OAuth JWT-bearer grant Google documents), and sends
// that token with every list and read; the token is fetched once for
// both. A token endpoint refusing the key fails at once, naming the
// refusal, instead of being retried.
func TestGCSServiceAccountAuth(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var grants atomic.Int32
	refuse := atomic.Bool{}
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grants.Add(1)
		r.ParseForm()
		if refuse.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("grant_type %q", g)
		}
		claims := verifyRS256(t, r.PostForm.Get("assertion"), &key.PublicKey)
		if claims["iss"] != "export-reader@ocff-acme-prd.iam.gserviceaccount.com" || claims["scope"] != "https://www.googleapis.com/auth/devstorage.read_only" {
			t.Errorf("JWT claims %v: want the key's client_email and the read-only scope", claims)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"ya29.test-token","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokenSrv.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ya29.test-token" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"code":401,"message":"Anonymous caller does not have storage.objects.list access"}}`)
			return
		}
		switch {
		case r.URL.Path == "/storage/v1/b/exports/o":
			io.WriteString(w, `{"items":[{"name":"2024-02-01/a.json","size":"2","updated":"2024-02-02T01:00:00.000Z"}]}`)
		case r.URL.Path == "/storage/v1/b/exports/o/2024-02-01/a.json" && r.URL.Query().Get("alt") == "media":
			io.WriteString(w, "{}")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(api.Close)
	data, _ := json.Marshal(map[string]any{"type": "service_account", "project_id": "ocff-acme-prd", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, key)})),
		"client_email": "export-reader@ocff-acme-prd.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenSrv.URL})
	path := filepath.Join(t.TempDir(), "key.json")
	os.WriteFile(path, data, 0o600)
	hc, endpoint, err := NewGCSClient(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if endpoint != GCSEndpoint {
		t.Errorf("endpoint %s, want %s", endpoint, GCSEndpoint)
	}
	g := GCSStore{HTTP: hc, Endpoint: api.URL + "/storage/v1", Bucket: "exports", Attempts: 3}
	var listed []Object
	if err := g.List(context.Background(), "2024-02-01/", func(o Object) error { listed = append(listed, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Key != "2024-02-01/a.json" || listed[0].Size != 2 {
		t.Fatalf("listed %+v", listed)
	}
	rc, _, err := g.Open(context.Background(), listed[0].Key, ReadAt{})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if n := grants.Load(); n != 1 {
		t.Errorf("%d token requests for a list and a read, want 1 (the token is reused)", n)
	}

	refuse.Store(true)
	hc, _, err = NewGCSClient(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	g.HTTP = hc
	grants.Store(0)
	err = g.List(context.Background(), "", func(Object) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("a refused key: %v, want the token endpoint's invalid_grant", err)
	}
	if n := grants.Load(); n != 1 {
		t.Errorf("%d token requests for a refused key, want 1 (a refusal is not retried)", n)
	}
}

// verifyRS256 checks a compact JWT's RS256 signature and returns its claims.
func verifyRS256(t *testing.T, jwt string, pub *rsa.PublicKey) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion %q is not a compact JWT", jwt)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("JWT signature: %v", err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
