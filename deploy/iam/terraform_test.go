package iam_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	templateCall = regexp.MustCompile(`(?s)templatefile\("\$\{path\.module\}/\.\./\.\./([a-z-]+\.json)", \{(.*?)\}\)`)
	templateVar  = regexp.MustCompile(`(?m)^\s*([a-z_]+)\s*=`)
	sidRef       = regexp.MustCompile(`s\.Sid != "(\w+)"|startswith\(s\.Sid, "(\w+)"\)|"(\w+)"[,\]]`)
)

// TestTerraformExamplesFillEveryPlaceholder checks the Terraform examples
// without Terraform: each templatefile call of a document passes exactly
// the document's placeholders, and every statement Sid the examples filter
// on exists. (terraform validate and an offline plan were run by hand; CI
// has no Terraform.)
func TestTerraformExamplesFillEveryPlaceholder(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("terraform", "*", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Terraform examples under terraform/ (%v)", err)
	}
	sids := map[string]bool{}
	for _, f := range []string{readerFile, relayFile, trustFile} {
		for _, s := range loadPolicy(t, f, anyValues(t, f)).Statement {
			sids[s.Sid] = true
		}
	}
	filled := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range templateCall.FindAllStringSubmatch(string(b), -1) {
			doc, body := m[1], m[2]
			filled[doc] = true
			var passed []string
			for _, v := range templateVar.FindAllStringSubmatch(body, -1) {
				passed = append(passed, v[1])
			}
			if got, want := strings.Join(sortedSet(passed), " "), strings.Join(placeholders(t, doc), " "); got != want {
				t.Errorf("%s: templatefile of %s passes [%s], the document's placeholders are [%s]", f, doc, got, want)
			}
		}
		for _, m := range sidRef.FindAllStringSubmatch(string(b), -1) {
			name := m[1] + m[2] + m[3]
			if !sids[name] && !strings.HasPrefix(name, "EnhancedFanOut") {
				t.Errorf("%s filters on statement %q, which no document has", f, name)
			}
			if strings.HasPrefix(name, "EnhancedFanOut") && !sids["EnhancedFanOutSubscribe"] {
				t.Errorf("%s filters on the EnhancedFanOut statements, which %s lacks", f, readerFile)
			}
		}
	}
	for _, doc := range []string{readerFile, relayFile, trustFile} {
		if !filled[doc] {
			t.Errorf("no Terraform example fills %s", doc)
		}
	}
}

// anyValues gives each placeholder of file a dummy value.
func anyValues(t *testing.T, file string) map[string]string {
	v := map[string]string{}
	for _, name := range placeholders(t, file) {
		v[name] = "x"
	}
	return v
}

func sortedSet(names []string) []string {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return sortedKeys(m)
}
