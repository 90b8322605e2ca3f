package secret

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func TestNeverPrints(t *testing.T) {
	s := struct {
		Token String `json:"token" yaml:"token"`
	}{Token: "hunter2"}
	j, _ := json.Marshal(s)
	y, _ := yaml.Marshal(s)
	for _, out := range []string{fmt.Sprint(s.Token), fmt.Sprintf("%v %s %#v %+v", s.Token, s.Token, s, s), string(j), string(y)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if s.Token.Reveal() != "hunter2" || String("").String() != "" {
		t.Error("Reveal or empty String wrong")
	}
}
