package secret

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable")
	os.WriteFile(unreadable, []byte("x\n"), 0o000)
	for _, tc := range []struct {
		name    string
		content string // written to a file unless path is set
		path    string
		want    string
		wantErr error
	}{
		{name: "no newline", content: "hunter2", want: "hunter2"},
		{name: "LF", content: "hunter2\n", want: "hunter2"},
		{name: "CRLF", content: "hunter2\r\n", want: "hunter2"},
		{name: "spaces are kept", content: " hunter 2\t\n", want: " hunter 2\t"},
		{name: "only one line ending is stripped", content: "hunter2\n\n", wantErr: errMultiline},
		{name: "two lines", content: "hunter2\nsecond\n", wantErr: errMultiline},
		{name: "stray CR", content: "hunter2\r", wantErr: errMultiline},
		{name: "empty file", content: "", wantErr: errEmptyFile},
		{name: "just a newline", content: "\r\n", wantErr: errEmptyFile},
		{name: "missing file", path: filepath.Join(dir, "missing"), wantErr: fs.ErrNotExist},
		{name: "unreadable: mode 000", path: unreadable, wantErr: fs.ErrPermission},
		{name: "unreadable: a directory", path: dir, wantErr: errors.New("is a directory")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if path == unreadable && os.Geteuid() == 0 {
				t.Skip("root reads files whatever their mode")
			}
			got, err := FromFile("sink.kafka.sasl.password_file", path)
			if tc.wantErr == nil {
				if err != nil || got.Reveal() != tc.want {
					t.Fatalf("FromFile = %q, %v; want %q", got.Reveal(), err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("FromFile = %q, want an error", got.Reveal())
			}
			if !errors.Is(err, tc.wantErr) && !strings.Contains(err.Error(), tc.wantErr.Error()) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "sink.kafka.sasl.password_file: ") || !strings.Contains(msg, path) {
				t.Errorf("err %q does not start with the field and name the file", msg)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("err %q holds the secret", msg)
			}
		})
	}
}
