package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestExampleNamesEveryField: `consumer config example` promises every
// field; each leaf path of Config appears in it, set or commented out
// under its section. It failed when fields were added (progress_timeout,
// the poll timeouts, TLS server_name, ...) without an example line.
func TestExampleNamesEveryField(t *testing.T) {
	have, empty := examplePaths(string(Example()))
	var missing []string
	// A section written as {} ("same fields as stream_role") is shown by
	// the first section of its type.
	shown := map[reflect.Type]string{}
	var leaves func(rt reflect.Type, path string)
	leaves = func(rt reflect.Type, path string) {
		for _, f := range yamlFields(rt) {
			p := strings.TrimPrefix(path+"."+f.name, ".")
			if isSection(f.typ) {
				if first, ok := shown[f.typ]; ok && empty[p] {
					p = first
				} else if !ok {
					shown[f.typ] = p
				}
				leaves(f.typ, p)
				continue
			}
			if !have[p] {
				missing = append(missing, p)
			}
		}
	}
	leaves(reflect.TypeOf(Config{}), "")
	if len(missing) > 0 {
		t.Errorf("config example lacks %d fields:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(have) < 50 {
		t.Errorf("read only %d paths from the example: the reader is broken", len(have))
	}
}

var (
	exampleKey  = regexp.MustCompile(`^( *)(?:# ?)?( *)([a-z0-9_]+):(.*)$`)
	exampleFlow = regexp.MustCompile(`^\s*\{(.*)\}`)
)

// examplePaths reads the dotted paths of the example's keys, commented
// ones included (a commented key is indented like the keys beside it),
// and which of them are written as an empty section ({}).
func examplePaths(text string) (paths, empty map[string]bool) {
	type level struct {
		indent int
		key    string
	}
	var stack []level
	out := map[string]bool{}
	empty = map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		m := exampleKey.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1]) + len(m[2])
		if strings.HasPrefix(strings.TrimSpace(line), "#") && indent == 0 && len(m[2]) == 0 {
			continue // a comment at the top: prose, not a key
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		var parts []string
		for _, l := range stack {
			parts = append(parts, l.key)
		}
		path := strings.Join(append(parts, m[3]), ".")
		out[path] = true
		if strings.HasPrefix(strings.TrimSpace(m[4]), "{}") {
			empty[path] = true
		}
		if f := exampleFlow.FindStringSubmatch(m[4]); f != nil {
			for _, kv := range strings.Split(f[1], ",") {
				if k, _, ok := strings.Cut(strings.TrimSpace(kv), ":"); ok {
					out[path+"."+strings.TrimSpace(k)] = true
				}
			}
		}
		stack = append(stack, level{indent, m[3]})
	}
	return out, empty
}
