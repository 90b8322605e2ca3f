package replay

import (
	"context"
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

// TestParseLocationIsLiteral: '#', '?' and '%' in an S3 or GCS prefix are
// part of the key. They were parsed as a URL's fragment, query and escapes,
// so s3://pfx/exp#1/ silently replayed exp/ (found by an independent
// tester).
func TestParseLocationIsLiteral(t *testing.T) {
	for url, want := range map[string]Location{
		"s3://pfx/exp#1/":          {Scheme: "s3", Bucket: "pfx", Prefix: "exp#1/"},
		"gs://pfx/q?x/":            {Scheme: "gs", Bucket: "pfx", Prefix: "q?x/"},
		"s3://pfx/a%20b/":          {Scheme: "s3", Bucket: "pfx", Prefix: "a%20b/"},
		"s3://pfx":                 {Scheme: "s3", Bucket: "pfx"},
		"gs://pfx/":                {Scheme: "gs", Bucket: "pfx"},
		"s3://pfx/public/2024/02/": {Scheme: "s3", Bucket: "pfx", Prefix: "public/2024/02/"},
	} {
		got, err := ParseLocation(url)
		if err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", url, got, err, want)
		}
	}
	for _, bad := range []string{"s3://", "gs:///prefix", "ftp://host/x"} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) accepted", bad)
		}
	}
}

// TestListOddPrefixes: S3 and GCS list exactly the keys under a prefix
// holding '#', '?', '%' or a space, not a look-alike.
func TestListOddPrefixes(t *testing.T) {
	x := exportSet{objects: map[string][]byte{}}
	prefixes := []string{"exp#1/", "q?x/", "a%20b/", "a b/", "exp/", "q/"}
	for _, p := range prefixes {
		x.objects[p+"obj"] = []byte("{}")
	}
	for name, st := range map[string]Store{"s3": s3Store(t, "odd-prefixes", x), "gcs": gcsStore(t, "odd-prefixes", x, func(string) bool { return false })} {
		for _, p := range prefixes[:4] {
			var keys []string
			if err := st.List(context.Background(), p, func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
				t.Fatalf("%s: listing %q: %v", name, p, err)
			}
			if len(keys) != 1 || keys[0] != p+"obj" {
				t.Errorf("%s: listing %q gave %q, want [%sobj]", name, p, keys, p)
			}
		}
	}
}

// TestPlanOneObjectURL: a URL naming one object (no trailing slash, no dot
// in its name, as Firehose names its files) plans that object; it used to
// be taken for a folder and find nothing. A mere prefix of a name is still
// a folder.
func TestPlanOneObjectURL(t *testing.T) {
	const key = "public/2024/02/01/09/eventrelay-export-1-2024-02-01-09-00-00-abc"
	x := exportSet{objects: map[string][]byte{key: []byte("{}"), key + "-2": []byte("{}"), "public/2024/02/01/09/other": []byte("{}")}}
	for name, st := range map[string]Store{"dir": DirStore{Root: writeDir(t, x)}, "s3": s3Store(t, "one-object", x),
		"gcs": gcsStore(t, "one-object", x, func(string) bool { return false })} {
		layout, objs, err := Plan(context.Background(), st, key, LayoutAuto, Window{}, AutoLateness)
		if err != nil || layout != LayoutFlat || len(objs) != 1 || objs[0].Key != key {
			t.Errorf("%s: one object's URL planned %s %v (%v), want that object alone", name, layout, objs, err)
		}
		_, objs, err = Plan(context.Background(), st, "public/2024/02/01/09/eventrelay-export", LayoutAuto, Window{}, AutoLateness)
		if err != nil || len(objs) != 0 {
			t.Errorf("%s: a name's prefix planned %v (%v), want nothing (a folder of that name)", name, objs, err)
		}
	}
}
