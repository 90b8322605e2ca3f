package main

import (
	"archive/tar"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestImage builds the image from a tiny static binary (testdata/tiny,
// built the way `make build` builds the consumer) and reads it back:
// numeric non-root user, entrypoint, labels, and a binary in the layer that
// is static and runs `version` when extracted. The layout does not depend
// on which binary it carries; `make image` puts the real one in.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "consumer")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=9.8.7 -X main.commit=cafe", "-o", bin, "./testdata/tiny")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "image.tar")
	if err := buildImage(bin, out); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(out)
	t.Logf("image tarball: %.1f MB", float64(st.Size())/1e6)

	oci := filepath.Join(dir, "oci")
	untar(t, out, oci)
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "ghcr.io/eventrelay/consumer:9.8.7" {
		t.Fatalf("index: %+v %v", im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/consumer" || cf.OS != "linux" {
		t.Errorf("config: user %q entrypoint %v os %s", cf.Config.User, cf.Config.Entrypoint, cf.OS)
	}
	for k, v := range map[string]string{"org.opencontainers.image.version": "9.8.7", "org.opencontainers.image.revision": "cafe", "org.opencontainers.image.title": "eventrelay"} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers: %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var extracted string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "consumer" {
			extracted = filepath.Join(dir, "extracted-consumer")
			f, _ := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			io.Copy(f, tr)
			f.Close()
			if h.Mode&0o111 == 0 || h.Uid != 0 {
				t.Errorf("binary mode %o uid %d", h.Mode, h.Uid)
			}
		}
	}
	if extracted == "" {
		t.Fatal("no /consumer in the layer")
	}
	ef, err := elf.Open(extracted)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked (has an interpreter)")
		}
	}
	ef.Close()
	v, err := exec.Command(extracted, "version").Output()
	if err != nil || !strings.Contains(string(v), "consumer 9.8.7 (commit cafe") {
		t.Errorf("extracted binary: %q %v", v, err)
	}
}

func buildImage(bin, out string) error {
	return build(bin, out, "ghcr.io/eventrelay/consumer:9.8.7", "9.8.7", "cafe", "2026-01-01T00:00:00Z", "/etc/ssl/certs/ca-certificates.crt")
}

func untar(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		w, _ := os.Create(p)
		io.Copy(w, tr)
		w.Close()
	}
}
