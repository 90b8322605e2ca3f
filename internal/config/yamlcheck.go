package config

import (
	"errors"
	"fmt"
	"reflect"

	yaml "go.yaml.in/yaml/v3"
)

// checkYAML walks a parsed file against Config's fields, so that an
// unknown key or a value of the wrong type is an error naming its path
// (source.kinesis.streem), not a Go type.
func checkYAML(doc *yaml.Node) error {
	var errs []error
	checkNode(doc, reflect.TypeOf(Config{}), "", &errs)
	return errors.Join(errs...)
}

func checkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !isSection(t) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: want %s, got %s (line %d)", path, describe(t), shown(n), n.Line))
		}
		return
	}
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return // an empty section
	}
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "configuration"
		}
		*errs = append(*errs, fmt.Errorf("%s: want a mapping of fields, got %s (line %d)", where, shown(n), n.Line))
		return
	}
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			checkNode(v, t, path, errs)
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		f, ok := fieldNamed(fields, k.Value)
		if !ok {
			*errs = append(*errs, fmt.Errorf("%s: unknown field (line %d)%s", p, k.Line, didYouMean(k.Value, fields)))
			continue
		}
		checkNode(v, f.typ, p, errs)
	}
}

func fieldNamed(fields []yamlField, name string) (yamlField, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return yamlField{}, false
}

func didYouMean(name string, fields []yamlField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if c := closest(name, names); c != "" {
		return fmt.Sprintf("; did you mean %s?", c)
	}
	return ""
}

// shown renders a node's value for an error message.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}
