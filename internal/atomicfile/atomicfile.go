// Package atomicfile replaces small state files (replay progress, poll
// cursors) so that a reader, or the disk after a crash or power loss, sees
// either the old content or the new one: never a mix, a truncated file or
// no file.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write replaces path with data. The data goes to a temporary file in
// path's directory (so the rename never crosses file systems), which is
// fsynced and renamed over path by github.com/google/renameio/v2; then the
// directory is fsynced, which renameio leaves to the caller, so that the
// rename itself is durable. A new file gets perm less the umask; a replaced
// file keeps its permissions. On error path is unchanged and the temporary
// file removed.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := renameio.WriteFile(path, data, perm, renameio.WithTempDir(dir)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
