package sink

import (
	"fmt"
	"strings"

	"github.com/eventrelay/eventrelay/internal/envelope"
)

// Router picks a topic per event from a template such as
// "events.{source}.{category}". Placeholders: {source}, {type}, {name},
// {tenant}, {category}. When a placeholder is empty for an event the fallback topic
// is used. Characters Kafka does not allow in topic names become '_'.
type Router struct {
	parts    []routePart
	fallback string
	static   bool
}

type routePart struct {
	lit   string
	field string // "" for a literal
}

var routeFields = map[string]bool{"source": true, "type": true, "name": true, "tenant": true, "category": true}

// NewRouter parses a topic template.
func NewRouter(template, fallback string) (*Router, error) {
	r := &Router{fallback: fallback, static: true}
	rest := template
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			r.parts = append(r.parts, routePart{lit: rest})
			break
		}
		if i > 0 {
			r.parts = append(r.parts, routePart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed '{' in topic template %q", template)
		}
		field := rest[i+1 : i+j]
		if !routeFields[field] {
			return nil, fmt.Errorf("unknown placeholder {%s} in topic template %q (want {source}, {type}, {name}, {tenant} or {category})", field, template)
		}
		r.parts = append(r.parts, routePart{field: field})
		r.static = false
		rest = rest[i+j+1:]
	}
	if r.static && !ValidTopic(template) {
		return nil, fmt.Errorf("topic %q is not a valid Kafka topic name", template)
	}
	if !ValidTopic(fallback) {
		return nil, fmt.Errorf("fallback topic %q is not a valid Kafka topic name", fallback)
	}
	return r, nil
}

// Topic returns the topic for an event.
func (r *Router) Topic(e *envelope.Event) string {
	if r.static {
		if len(r.parts) == 0 {
			return r.fallback
		}
		return r.parts[0].lit
	}
	var b strings.Builder
	for _, p := range r.parts {
		if p.field == "" {
			b.WriteString(p.lit)
			continue
		}
		v := fieldValue(e, p.field)
		if v == "" {
			return r.fallback
		}
		for _, c := range v { // one '_' per character, not per UTF-8 byte
			if c >= 0x80 || !topicChar(byte(c)) {
				c = '_'
			}
			b.WriteByte(byte(c))
		}
	}
	t := b.String()
	if !ValidTopic(t) { // longer than 249 bytes, or "." / ".."
		return r.fallback
	}
	return t
}

// topicMemo remembers the last topic a Router built and the field values
// it was built from: the events of a batch mostly share them, and the
// template is then not rendered (nor allocated) again per event. One memo
// per goroutine.
type topicMemo struct {
	vals  [8]string
	topic string
	ok    bool
}

// topicMemo is Topic, answered from m when e's template fields equal the
// previous event's.
func (r *Router) topicMemo(e *envelope.Event, m *topicMemo) string {
	if r.static || len(r.parts) > len(m.vals) {
		return r.Topic(e)
	}
	same := m.ok
	var vals [8]string
	for i, p := range r.parts {
		if p.field != "" {
			vals[i] = fieldValue(e, p.field)
			same = same && vals[i] == m.vals[i]
		}
	}
	if !same {
		m.vals, m.topic, m.ok = vals, r.Topic(e), true
	}
	return m.topic
}

func fieldValue(e *envelope.Event, f string) string {
	switch f {
	case "source":
		return string(e.Source)
	case "type":
		return e.Type
	case "name":
		return e.Name
	case "tenant":
		return e.Tenant
	default:
		return e.Category
	}
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ValidTopic reports whether s is a legal Kafka topic name.
func ValidTopic(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if !topicChar(c) {
			return false
		}
	}
	return true
}
