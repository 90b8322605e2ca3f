package secret

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// FromFile reads the secret a `*_file` setting points at. field is the
// setting's name as the user wrote it (e.g. "sink.kafka.sasl.password_file")
// and starts every error, which never holds the value.
//
// The file's bytes are the secret, less one trailing line ending ("\n" or
// "\r\n") that `echo`, editors and `kubectl create secret --from-file` leave
// behind. Nothing else is trimmed: spaces and tabs may be part of a
// password. A file that is empty after that, or that still holds a line
// break (two lines, or a stray "\r"), is an error: such a value is a
// mistake, and it would be sent in an HTTP header or SASL exchange as is.
func FromFile(field, path string) (String, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s, _ = strings.CutSuffix(t, "\r")
	}
	switch {
	case s == "":
		return "", fmt.Errorf("%s: %s: %w", field, path, errEmptyFile)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%s: %s: %w", field, path, errMultiline)
	}
	return String(s), nil
}

var (
	errEmptyFile = errors.New("file is empty")
	errMultiline = errors.New("file holds more than one line")
)
