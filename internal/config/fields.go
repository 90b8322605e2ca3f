package config

import (
	"reflect"
	"strings"
)

// yamlField is one field of a configuration struct as YAML names it.
type yamlField struct {
	name  string
	index []int // for reflect.Value.FieldByIndex, through inline structs
	typ   reflect.Type
}

// yamlFields lists t's fields by their YAML names, the fields of inline
// structs included; unexported and `yaml:"-"` fields are left out.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag[0] == "-" {
			continue
		}
		if len(tag) > 1 && tag[1] == "inline" {
			for _, in := range yamlFields(f.Type) {
				in.index = append([]int{i}, in.index...)
				out = append(out, in)
			}
			continue
		}
		name := tag[0]
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, yamlField{name: name, index: []int{i}, typ: f.Type})
	}
	return out
}

// isSection reports whether t is a section (a struct of fields) rather
// than a value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != timeType
}

// describe says what a value of t is written as, for errors.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "a duration like 500ms or 2m"
	case t == timeType:
		return "an RFC 3339 time like 2024-02-01T00:00:00Z"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "an integer"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case isSection(t):
		return "a mapping of fields"
	}
	return t.String()
}

// closest returns the candidate nearest to name when it is close enough
// to be a likely typo, else "".
func closest(name string, candidates []string) string {
	best, bestD := "", 3
	if len(name) <= 12 {
		bestD = 2
	}
	bestD++
	for _, c := range candidates {
		if d := distance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func distance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
