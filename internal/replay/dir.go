package replay

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DirStore reads a local directory; keys are slash-separated paths
// relative to it.
type DirStore struct{ Root string }

// Name implements Store.
func (d DirStore) Name() string { return d.Root }

// List implements Store.
func (d DirStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	var objs []Object
	err := filepath.WalkDir(d.Root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(d.Root, path)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		objs = append(objs, Object{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Dirs implements Store.
func (d DirStore) Dirs(_ context.Context, prefix string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(d.Root, filepath.FromSlash(prefix)))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, prefix+e.Name()+"/")
		}
	}
	return out, nil
}

// Open implements Store.
func (d DirStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(d.Root, filepath.FromSlash(key)))
}
