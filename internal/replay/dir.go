package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// DirStore reads a local directory; keys are slash-separated paths
// relative to it. Only regular files (or symbolic links to them) are
// objects: a FIFO, socket or device in an export directory would block
// the replay on its first read, so List skips it with a warning on Log.
type DirStore struct {
	Root string
	Log  zerolog.Logger
}

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
		info, err := os.Stat(path) // follows a symbolic link to its file
		if errors.Is(err, fs.ErrNotExist) {
			d.Log.Warn().Str("object", key).Msg("skipping a symbolic link to nothing")
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", path, err)
		}
		if !info.Mode().IsRegular() {
			d.Log.Warn().Str("object", key).Str("mode", info.Mode().Type().String()).Msg("skipping a file that is not a regular file (FIFO, socket, device or directory link)")
			return nil
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

// Open implements Store. The file is opened without blocking (opening a
// FIFO for reading would wait for a writer) and refused unless it is a
// regular file: it may have been replaced since it was listed.
// A file's version is its size, modification and change times and inode
// (fileVersion).
func (d DirStore) Open(_ context.Context, key string, at ReadAt) (io.ReadCloser, string, error) {
	path := filepath.Join(d.Root, filepath.FromSlash(key))
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("opening %s: %w", path, err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", info.Mode().Type())
	}
	version := ""
	if err == nil {
		version = fileVersion(info)
		if at.Version != "" && version != at.Version {
			err = fmt.Errorf("%w: size and time %s, was %s", ErrObjectReplaced, version, at.Version)
		}
	}
	if err == nil && at.From > 0 {
		_, err = f.Seek(at.From, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("opening %s: %w", path, err)
	}
	return &checkedFile{f: f, path: path, size: info.Size(), mod: info.ModTime()}, version, nil
}

// fileVersion names a file's content as far as its metadata can: size,
// modification time, and (where the system has them) inode and change time,
// which a write that restores the old modification time still changes.
func fileVersion(info os.FileInfo) string {
	v := writtenVersion(info)
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		v += fmt.Sprintf("/%d@%d", st.Ino, st.Ctim.Nano())
	}
	return v
}

// writtenVersion is a file's size and modification time: what a write
// through an open file changes (its change time also moves when the file
// is renamed over or unlinked, which leaves the content opened intact, so
// checkedFile compares only these).
func writtenVersion(info os.FileInfo) string {
	return fmt.Sprintf("%d@%d", info.Size(), info.ModTime().UnixNano())
}

// checkedFile fails reads once the file changed in place (overwritten or
// truncated through the same inode: size or time differ from when it was
// opened), so the bytes of two versions are never spliced; a file replaced
// by a rename keeps being read whole, from the inode opened.
type checkedFile struct {
	f    *os.File
	path string
	size int64 // at open: what a write through the inode changes
	mod  time.Time
}

func (c *checkedFile) Read(p []byte) (int, error) {
	if info, err := c.f.Stat(); err == nil && (info.Size() != c.size || !info.ModTime().Equal(c.mod)) {
		return 0, fmt.Errorf("%w: %s changed while it was read (size and time %s, was %d@%d)", ErrObjectReplaced, c.path, writtenVersion(info), c.size, c.mod.UnixNano())
	}
	return c.f.Read(p)
}

func (c *checkedFile) Close() error { return c.f.Close() }
