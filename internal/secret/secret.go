// Package secret holds the string type for credentials in configuration:
// it never prints, in logs, errors or dumped configuration.
package secret

// String is a secret value. Use Reveal to read it.
type String string

const redacted = "<redacted>"

func (s String) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing it.
func (s String) GoString() string { return s.String() }

// MarshalText keeps it out of dumped configuration.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalYAML keeps it out of dumped YAML configuration.
func (s String) MarshalYAML() (any, error) { return s.String(), nil }

// Reveal returns the value, for the one place that must use it.
func (s String) Reveal() string { return string(s) }
