package replay

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTenantFromLocation: the fulfillmenttools bucket is named
// {tenant}-{tier}-public-events-export-bucket, and the vendor's example
// copies it with `gsutil cp -r gs://ocff-<TENANT_NAME>-<TIER>-public-events-export-bucket ./`
// (seed 000). However the copy's path is spelled, the tenant is the one in
// that component; a path with no such component names no tenant.
func TestTenantFromLocation(t *testing.T) {
	root := t.TempDir()
	bucket := filepath.Join(root, "exports", "ocff-mytenant-pre-public-events-export-bucket")
	day := filepath.Join(bucket, "2024-02-01")
	plain := filepath.Join(root, "exports", "plain")
	for _, d := range []string{day, plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, dir, url, want string
	}{
		{"absolute", "", bucket, "mytenant"},
		{"absolute with trailing slash", "", bucket + "/", "mytenant"},
		{"file URL", "", "file://" + bucket, "mytenant"},
		{"relative", filepath.Join(root, "exports"), "ocff-mytenant-pre-public-events-export-bucket", "mytenant"},
		{"relative with ./ and trailing slash", filepath.Join(root, "exports"), "./ocff-mytenant-pre-public-events-export-bucket/", "mytenant"},
		{"dot inside the bucket folder", bucket, ".", "mytenant"},
		{"dot-slash inside the bucket folder", bucket, "./", "mytenant"},
		{"parent from a day folder", day, "..", "mytenant"},
		{"a day folder inside the copy", "", day, "mytenant"},
		{"dot inside a day folder", day, ".", "mytenant"},
		{"gs bucket", "", "gs://ocff-mytenant-pre-public-events-export-bucket/", "mytenant"},
		{"gs bucket and day prefix", "", "gs://ocff-mytenant-pre-public-events-export-bucket/2024-02-01/", "mytenant"},
		{"bucket without ocff-", "", "gs://acme-prd-public-events-export-bucket", "acme"},
		{"hyphenated tenant", "", "gs://ocff-big-shop-prd-public-events-export-bucket", "big-shop"},
		{"no such component", "", plain, ""},
		{"dot in a plain folder", plain, ".", ""},
		{"other bucket", "", "gs://some-other-bucket/ocff-x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dir != "" {
				t.Chdir(tc.dir)
			}
			loc, err := ParseLocation(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TenantFromLocation(loc)
			if err != nil || got != tc.want {
				t.Errorf("TenantFromLocation(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
			}
		})
	}
}
