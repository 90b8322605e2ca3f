package iam_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// This file is a small IAM policy evaluator for the subset the shipped
// documents use: Allow statements with Action, Resource, Principal (AWS)
// and Condition with StringEquals or StringLike. Anything else in a
// document (Deny, NotAction, NotResource, another operator) makes loading
// fail rather than be evaluated wrongly, so the test cannot pass on a
// document it does not understand.

// policy is one loaded document with its placeholders substituted.
type policy struct {
	File      string
	Statement []statement
}

type statement struct {
	Sid       string
	Effect    string
	Principal map[string]stringList
	Action    stringList
	Resource  stringList
	Condition map[string]map[string]stringList

	// templates are the Resource patterns as written, placeholders and
	// all: a grant is counted by them, whatever the values.
	templates []string
}

// stringList is a JSON string or array of strings, as IAM accepts both.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings: %w", err)
	}
	*l = many
	return nil
}

var placeholder = regexp.MustCompile(`\$\{([a-z_]+)\}`)

// placeholders returns the ${name} placeholders a document uses.
func placeholders(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(string(b), -1) {
		seen[m[1]] = true
	}
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// loadPolicy reads file, substitutes every ${name} from values (a
// placeholder without a value fails) and decodes it strictly.
func loadPolicy(t *testing.T, file string, values map[string]string) *policy {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	text := placeholder.ReplaceAllStringFunc(string(b), func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		t.Fatalf("%s: placeholders %v have no test value", file, missing)
	}
	type document struct {
		Version   string
		Statement []statement
	}
	var doc, raw document
	for _, d := range []struct {
		text string
		into *document
	}{{text, &doc}, {string(b), &raw}} {
		dec := json.NewDecoder(bytes.NewReader([]byte(d.text)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(d.into); err != nil {
			t.Fatalf("%s: %v (the test's evaluator knows Sid, Effect, Principal, Action, Resource, Condition)", file, err)
		}
	}
	for i := range doc.Statement {
		doc.Statement[i].templates = resourcesOf(raw.Statement[i])
	}
	if doc.Version != "2012-10-17" {
		t.Errorf("%s: Version %q, want 2012-10-17 (older versions do not substitute policy variables)", file, doc.Version)
	}
	p := &policy{File: file, Statement: doc.Statement}
	for i, s := range p.Statement {
		if s.Sid == "" {
			t.Fatalf("%s statement %d has no Sid; the test names statements by it", file, i)
		}
		if s.Effect != "Allow" {
			t.Fatalf("%s statement %d (%s): Effect %q; the evaluator supports Allow statements only", file, i, s.Sid, s.Effect)
		}
		for op, keys := range s.Condition {
			if op != "StringEquals" && op != "StringLike" {
				t.Fatalf("%s statement %s: condition operator %s is not supported by the evaluator", file, s.Sid, op)
			}
			for key := range keys {
				if !strings.Contains(key, ":") {
					t.Fatalf("%s statement %s: condition key %q is not a service:key name", file, s.Sid, key)
				}
			}
		}
		for k := range s.Principal {
			if k != "AWS" {
				t.Fatalf("%s statement %s: principal type %s is not supported by the evaluator", file, s.Sid, k)
			}
		}
	}
	return p
}

// request is one authorization IAM makes: who (Principal, for trust
// policies), what (Action on Resource) and the condition keys it knows.
type request struct {
	Action    string
	Resource  string
	Principal string
	Context   map[string]string
}

func (r request) String() string {
	s := r.Action + " on " + r.Resource
	if r.Principal != "" {
		s += " by " + r.Principal
	}
	return s
}

// grant is one (statement, action pattern, resource pattern as written)
// of a document: the unit the "nothing granted that is never used" rule
// counts.
type grant struct {
	Sid, Action, Resource string
}

// allow evaluates r and returns the grants that allow it (none: denied).
func (p *policy) allow(r request) []grant {
	var out []grant
	for _, s := range p.Statement {
		if !principalMatches(s, r) || !conditionsHold(s, r) {
			continue
		}
		for _, a := range s.Action {
			if !globMatch(strings.ToLower(a), strings.ToLower(r.Action)) { // action names are case-insensitive
				continue
			}
			for i, res := range resourcesOf(s) {
				if globMatch(res, r.Resource) {
					out = append(out, grant{Sid: s.Sid, Action: a, Resource: s.template(i)})
				}
			}
		}
	}
	return out
}

// grants lists every (statement, action, resource) the document gives.
func (p *policy) grants() []grant {
	var out []grant
	for _, s := range p.Statement {
		for _, a := range s.Action {
			for i := range resourcesOf(s) {
				out = append(out, grant{Sid: s.Sid, Action: a, Resource: s.template(i)})
			}
		}
	}
	return out
}

// template is resource i as written in the document.
func (s statement) template(i int) string {
	if i < len(s.templates) {
		return s.templates[i]
	}
	return resourcesOf(s)[i]
}

// resourcesOf: a trust policy's statements name no Resource (the role
// itself is the resource).
func resourcesOf(s statement) []string {
	if len(s.Resource) == 0 && len(s.Principal) > 0 {
		return []string{"*"}
	}
	return s.Resource
}

func principalMatches(s statement, r request) bool {
	if len(s.Principal) == 0 {
		return true // identity policy: the principal is whoever holds it
	}
	for _, p := range s.Principal["AWS"] {
		if p == r.Principal {
			return true
		}
	}
	return false
}

// conditionsHold: every key of every operator must be present in the
// request and match one of the values, as IAM evaluates them (a key the
// request lacks fails the condition).
func conditionsHold(s statement, r request) bool {
	for op, keys := range s.Condition {
		for key, values := range keys {
			got, ok := r.Context[key]
			if !ok {
				return false
			}
			matched := false
			for _, v := range values {
				if (op == "StringEquals" && got == v) || (op == "StringLike" && globMatch(v, got)) {
					matched = true
				}
			}
			if !matched {
				return false
			}
		}
	}
	return true
}

// globMatch matches IAM wildcards: * any run of characters, ? one.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	}
	return s != "" && pattern[0] == s[0] && globMatch(pattern[1:], s[1:])
}

// TestEvaluator pins the evaluator's semantics, so a pass of the policy
// test means what it says.
func TestEvaluator(t *testing.T) {
	p := &policy{File: "inline", Statement: []statement{
		{Sid: "S", Effect: "Allow", Action: stringList{"kinesis:GetRecords", "s3:Get*"}, Resource: stringList{"arn:aws:kinesis:eu-west-1:1:stream/s", "arn:aws:s3:::b/p/*"}},
		{Sid: "K", Effect: "Allow", Action: stringList{"kms:Decrypt"}, Resource: stringList{"arn:k"},
			Condition: map[string]map[string]stringList{"StringEquals": {"kms:ViaService": {"kinesis.eu-west-1.amazonaws.com"}}}},
		{Sid: "T", Effect: "Allow", Action: stringList{"sts:AssumeRole"}, Principal: map[string]stringList{"AWS": {"arn:aws:iam::2:role/r"}},
			Condition: map[string]map[string]stringList{"StringEquals": {"sts:ExternalId": {"x"}}}},
	}}
	tests := []struct {
		r    request
		want bool
	}{
		{request{Action: "kinesis:GetRecords", Resource: "arn:aws:kinesis:eu-west-1:1:stream/s"}, true},
		{request{Action: "Kinesis:getrecords", Resource: "arn:aws:kinesis:eu-west-1:1:stream/s"}, true},
		{request{Action: "kinesis:GetRecords", Resource: "arn:aws:kinesis:eu-west-1:1:stream/other"}, false},
		{request{Action: "kinesis:PutRecords", Resource: "arn:aws:kinesis:eu-west-1:1:stream/s"}, false},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/p/2024/x.gz"}, true},
		{request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/q/x.gz"}, false},
		{request{Action: "kms:Decrypt", Resource: "arn:k"}, false},
		{request{Action: "kms:Decrypt", Resource: "arn:k", Context: map[string]string{"kms:ViaService": "kinesis.eu-west-1.amazonaws.com"}}, true},
		{request{Action: "kms:Decrypt", Resource: "arn:k", Context: map[string]string{"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}, false},
		{request{Action: "sts:AssumeRole", Resource: "*", Principal: "arn:aws:iam::2:role/r", Context: map[string]string{"sts:ExternalId": "x"}}, true},
		{request{Action: "sts:AssumeRole", Resource: "*", Principal: "arn:aws:iam::2:role/r", Context: map[string]string{"sts:ExternalId": "y"}}, false},
		{request{Action: "sts:AssumeRole", Resource: "*", Principal: "arn:aws:iam::2:role/r"}, false},
		{request{Action: "sts:AssumeRole", Resource: "*", Principal: "arn:aws:iam::3:role/r", Context: map[string]string{"sts:ExternalId": "x"}}, false},
	}
	for _, tc := range tests {
		if got := len(p.allow(tc.r)) > 0; got != tc.want {
			t.Errorf("%v (context %v): allowed %v, want %v", tc.r, tc.r.Context, got, tc.want)
		}
	}
}
