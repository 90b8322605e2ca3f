package iam_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// kclCall matches a call of the KCL on its Kinesis client (w.kc, sc.kc) or
// its DynamoDB client (checkpointer.svc).
var kclCall = regexp.MustCompile(`\.(kc|svc)\.([A-Z][A-Za-z]+)\(`)

// kclActions returns the IAM actions behind every AWS call in the source
// of the KCL packages eventrelay links (worker, checkpoint), read from the
// module cache at the version go.mod requires. Its CloudWatch metrics
// package is not linked (eventrelay passes its own Prometheus monitoring
// service), so cloudwatch:PutMetricData is not among them.
func kclActions(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/vmware/vmware-go-kcl-v2").Output()
	if err != nil {
		t.Fatalf("finding the KCL module (go list -m): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("go list -m gave no directory for the KCL module; run go mod download")
	}
	actions := map[string]bool{}
	for pkg, service := range map[string]string{"worker": "kinesis", "checkpoint": "dynamodb"} {
		files, err := filepath.Glob(filepath.Join(dir, "clientlibrary", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no source of the KCL's %s package under %s (%v)", pkg, dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range kclCall.FindAllStringSubmatch(string(b), -1) {
				actions[service+":"+m[2]] = true
			}
		}
	}
	return actions
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
