package replay

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
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
			}
		})
	}
}

func mustPKCS8(t *testing.T, k *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
