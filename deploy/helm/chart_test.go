// Package helm_test checks the Helm chart: helm lint --strict, helm
// template with default and full values, every rendered manifest decoded
// strictly into its Kubernetes API type (unknown fields fail), and the
// rendered eventrelay configuration validated by eventrelay's own loader.
package helm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/eventrelay/eventrelay/internal/replay"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chart = "eventrelay"

// helmBin finds helm (PATH, then $GOPATH/bin). Where EVENTRELAY_REQUIRE_HELM
// is set (CI), a missing helm fails the test.
func helmBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gp)), "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("EVENTRELAY_REQUIRE_HELM") != "" {
		t.Fatal("helm is required (EVENTRELAY_REQUIRE_HELM is set) but not installed")
	}
	t.Skip("helm not installed (go install helm.sh/helm/v3/cmd/helm@v3.22.0); CI installs it")
	return ""
}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("helm %v: %v: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// strict decodes YAML into v, failing on fields v does not have.
func strict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// monitorMeta and scrapeEndpoint are what the Prometheus operator's
// ServiceMonitor and PodMonitor share.
type monitorMeta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

type scrapeEndpoint struct {
	Port     string `json:"port"`
	Path     string `json:"path"`
	Interval string `json:"interval"`
}

type matchLabels struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type serviceMonitor struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   monitorMeta `json:"metadata"`
	Spec       struct {
		Selector  matchLabels      `json:"selector"`
		Endpoints []scrapeEndpoint `json:"endpoints"`
	} `json:"spec"`
}

// ruleFile is the Prometheus rules file schema (what promtool checks).
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec ruleFile `json:"spec"`
}

func render(t *testing.T, values ...string) map[string][]any {
	t.Helper()
	args := []string{"template", "rel", chart}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string][]any{}
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
			continue
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		var obj any
		switch meta.Kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Job":
			obj = &batchv1.Job{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Service":
			obj = &corev1.Service{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "ServiceMonitor":
			obj = &serviceMonitor{}
		case "PrometheusRule":
			obj = &prometheusRule{}
		case "PodMonitor":
			obj = &podMonitor{}
		default:
			t.Fatalf("no test type for kind %q", meta.Kind)
		}
		if err := strict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", meta.Kind, err, doc)
		}
		objs[meta.Kind] = append(objs[meta.Kind], obj)
	}
	return objs
}

func TestChartLint(t *testing.T) {
	for _, v := range [][]string{nil, {"-f", "eventrelay/ci/full-values.yaml"}} {
		if out, err := helm(t, append([]string{"lint", "--strict", chart}, v...)...); err != nil {
			t.Errorf("lint %v: %v\n%s", v, err, out)
		}
	}
}

func TestChartRendersValidObjects(t *testing.T) {
	for name, values := range map[string][]string{"default": nil, "full": {"eventrelay/ci/full-values.yaml"}} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, values...)
			d := objs["Deployment"][0].(*appsv1.Deployment)
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			sc := c.SecurityContext
			if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser == 0 ||
				sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("security context is not restrictive: pod %+v container %+v", pod.SecurityContext, sc)
			}
			if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("probes: %+v %+v", c.LivenessProbe, c.ReadinessProbe)
			}
			if *pod.TerminationGracePeriodSeconds <= 30 {
				t.Errorf("terminationGracePeriodSeconds %d is not longer than the 30s drain", *pod.TerminationGracePeriodSeconds)
			}
			cm := objs["ConfigMap"][0].(*corev1.ConfigMap)
			path := filepath.Join(t.TempDir(), "config.yaml")
			os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600)
			cfg, err := config.Load(path, func(string) string { return "" })
			if err == nil {
				err = cfg.ValidateStream()
			}
			if err != nil {
				t.Errorf("the chart's configuration is not valid for consumer stream: %v\n%s", err, cm.Data["config.yaml"])
			}
			if name == "full" {
				if len(objs["PrometheusRule"]) != 1 || len(objs["ConfigMap"]) != 2 {
					t.Errorf("full values: %d PrometheusRules, %d ConfigMaps (want the dashboard too)", len(objs["PrometheusRule"]), len(objs["ConfigMap"]))
				}
				if len(objs["Job"]) != 1 || len(objs["ServiceMonitor"]) != 1 || *d.Spec.Replicas != 3 {
					t.Errorf("full values: %d jobs, %d service monitors, %d replicas", len(objs["Job"]), len(objs["ServiceMonitor"]), *d.Spec.Replicas)
				}
				if cfg.AWS.StreamRole.ExternalIDFile == "" || cfg.Sink.Kafka.SASL.PasswordFile == "" {
					t.Errorf("secret files not wired into the configuration: %+v", cfg.AWS.StreamRole)
				}
				sa := objs["ServiceAccount"][0].(*corev1.ServiceAccount)
				if sa.Annotations["eks.amazonaws.com/role-arn"] == "" {
					t.Error("IRSA annotation missing")
				}
			}
		})
	}
}

func TestChartRefusesShortGracePeriod(t *testing.T) {
	out, err := helm(t, "template", "rel", chart, "--set", "terminationGracePeriodSeconds=20")
	if err == nil || !strings.Contains(out, "terminationGracePeriodSeconds (20) must be at least drainTimeoutSeconds + 5") {
		t.Errorf("want a refusal, got err %v\n%s", err, out)
	}
	out, err = helm(t, "template", "rel", chart, "--set", "replicaCount=-1")
	if err == nil || !strings.Contains(out, "replicaCount") {
		t.Errorf("values.schema.json should refuse a negative replicaCount: %v\n%s", err, out)
	}
}

// TestMonitoringFiles: the chart ships the same dashboard and alert rules as
// deploy/grafana; the rules decode strictly into the rules-file schema and
// every alert has an expression, a duration, a severity and a summary; the
// dashboard is JSON whose panels all have queries.
func TestMonitoringFiles(t *testing.T) {
	for _, name := range []string{"alerts.yaml", "eventrelay-dashboard.json"} {
		a, err1 := os.ReadFile(filepath.Join("..", "grafana", name))
		b, err2 := os.ReadFile(filepath.Join("eventrelay", "files", name))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("deploy/grafana/%s and the chart's files/%s differ (copy it over): %v %v", name, name, err1, err2)
		}
	}
	data, _ := os.ReadFile("../grafana/alerts.yaml")
	var rf ruleFile
	if err := strict(data, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("incomplete rule %+v", r)
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alert rules, want the 5 documented ones", n)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw, _ := os.ReadFile("../grafana/eventrelay-dashboard.json")
	if err := json.Unmarshal(raw, &dash); err != nil || len(dash.Panels) < 8 {
		t.Fatalf("dashboard: %d panels, %v", len(dash.Panels), err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// replayJob renders the chart with the replay Job enabled and the values
// in extra (YAML under replay:), and returns the Job.
func replayJob(t *testing.T, extra string) *batchv1.Job {
	t.Helper()
	values := filepath.Join(t.TempDir(), "values.yaml")
	doc := "replay:\n  enabled: true\n  urls: [s3://onewelcome-export/public/]\n  from: \"2024-02-01\"\n" + extra
	if err := os.WriteFile(values, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	jobs := render(t, values)["Job"]
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs rendered, want the replay Job", len(jobs))
	}
	return jobs[0].(*batchv1.Job)
}

// TestChartReplayParallelism: replay.parallelism 1 (the default) renders
// the single-pod Job as before; 3 renders an Indexed Job of 3 completions
// whose pods run --partition index/3 with the completion index in
// $JOB_COMPLETION_INDEX and a state file per index, which the binary's own
// parser reads as part i of 3; replay.maxParallel caps the pods at once;
// the schema refuses a parallelism below 1.
func TestChartReplayParallelism(t *testing.T) {
	arg := func(c corev1.Container, flag string) (string, bool) {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, flag+"="); ok {
				return v, true
			}
		}
		return "", false
	}

	one := replayJob(t, "")
	c := one.Spec.Template.Spec.Containers[0]
	if one.Spec.CompletionMode != nil || one.Spec.Completions != nil || one.Spec.Parallelism != nil || len(c.Env) != 0 {
		t.Errorf("parallelism 1: completionMode %v, completions %v, parallelism %v, env %v; want the plain Job", one.Spec.CompletionMode, one.Spec.Completions, one.Spec.Parallelism, c.Env)
	}
	if p, ok := arg(c, "--partition"); ok {
		t.Errorf("parallelism 1 passes --partition=%s", p)
	}
	if s, _ := arg(c, "--state"); s != "/var/lib/eventrelay/replay-state.json" {
		t.Errorf("parallelism 1: --state=%s, want the state file of before", s)
	}

	for _, tc := range []struct {
		values      string
		parallelism int32
	}{{"  parallelism: 3\n", 3}, {"  parallelism: 3\n  maxParallel: 2\n", 2}, {"  parallelism: 3\n  maxParallel: 5\n", 3}} {
		job := replayJob(t, tc.values)
		c := job.Spec.Template.Spec.Containers[0]
		if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion || job.Spec.Completions == nil || *job.Spec.Completions != 3 ||
			job.Spec.Parallelism == nil || *job.Spec.Parallelism != tc.parallelism {
			t.Errorf("%q: completionMode %v, completions %v, parallelism %v; want Indexed, 3, %d", tc.values, job.Spec.CompletionMode, job.Spec.Completions, job.Spec.Parallelism, tc.parallelism)
			continue
		}
		spec, _ := arg(c, "--partition")
		state, _ := arg(c, "--state")
		if spec != "index/3" || state != "/var/lib/eventrelay/replay-state-$(JOB_COMPLETION_INDEX).json" {
			t.Errorf("%q: --partition=%s --state=%s, want index/3 and a state file per index", tc.values, spec, state)
		}
		var index *corev1.EnvVar
		for i := range c.Env {
			if c.Env[i].Name == replay.IndexEnv {
				index = &c.Env[i]
			}
		}
		if index == nil || index.ValueFrom == nil || index.ValueFrom.FieldRef == nil ||
			index.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("%q: env %+v, want %s from the completion-index annotation (so $(%s) in the args expands)", tc.values, c.Env, replay.IndexEnv, replay.IndexEnv)
		}
		for i := range 3 {
			p, err := replay.ParsePartition(spec, func(k string) string {
				if k == replay.IndexEnv {
					return strconv.Itoa(i)
				}
				return ""
			})
			if err != nil || p != (replay.Partition{Index: i, Count: 3}) {
				t.Errorf("--partition=%s in the pod of index %d: %v, %v", spec, i, p, err)
			}
		}
	}

	for _, bad := range []string{"replay.parallelism=0", "replay.maxParallel=-1"} {
		if out, err := helm(t, "template", "rel", chart, "--set", "replay.enabled=true", "--set", "replay.urls[0]=s3://b/p/", "--set", bad); err == nil || !strings.Contains(out, strings.Split(bad, "=")[0][len("replay."):]) {
			t.Errorf("--set %s: want the schema to refuse it, got %v\n%s", bad, err, out)
		}
	}
}
