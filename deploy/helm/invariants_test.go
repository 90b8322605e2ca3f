package helm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/config"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

type podMonitor struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   monitorMeta `json:"metadata"`
	Spec       struct {
		Selector            matchLabels      `json:"selector"`
		PodMetricsEndpoints []scrapeEndpoint `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// A documented values combination: each field is one of the switches the
// README's Kubernetes section documents.
type combo struct {
	stream, replay, monitoring, extras, customPort, longDrain bool
}

func (c combo) String() string {
	on := func(b bool, s string) string {
		if b {
			return s
		}
		return "-"
	}
	return strings.Join([]string{on(c.stream, "stream"), on(c.replay, "replay"), on(c.monitoring, "monitoring"),
		on(c.extras, "secrets+pdb+parts3"), on(c.customPort, "port9090"), on(c.longDrain, "drain120")}, "_")
}

func (c combo) values() map[string]any {
	v := map[string]any{
		"stream":              map[string]any{"enabled": c.stream},
		"serviceMonitor":      map[string]any{"enabled": c.monitoring},
		"prometheusRule":      map[string]any{"enabled": c.monitoring},
		"grafanaDashboard":    map[string]any{"enabled": c.monitoring},
		"podDisruptionBudget": map[string]any{"enabled": c.extras},
	}
	if c.replay {
		r := map[string]any{"enabled": true, "urls": []string{"s3://onewelcome-export/public/"}, "from": "2024-02-01"}
		if c.extras {
			r["parallelism"] = 3
		}
		v["replay"] = r
	}
	if c.extras {
		v["secrets"] = map[string]any{
			"externalId":    map[string]any{"name": "ext", "key": "external-id"},
			"kafkaPassword": map[string]any{"name": "kafka", "key": "password"},
			"gcsKey":        map[string]any{"name": "gcs", "key": "key.json"},
		}
	}
	cfg := map[string]any{}
	if c.extras {
		cfg["aws"] = map[string]any{"stream_role": map[string]any{"role_arn": "arn:aws:iam::111122223333:role/onewelcome"}}
	}
	if c.customPort {
		cfg["http"] = map[string]any{"addr": ":9090"}
	}
	v["config"] = cfg
	if c.longDrain {
		v["drainTimeoutSeconds"] = 120
		v["terminationGracePeriodSeconds"] = 130
	}
	return v
}

func allCombos() []combo {
	var cs []combo
	for i := 0; i < 1<<6; i++ {
		b := func(k int) bool { return i&(1<<k) != 0 }
		cs = append(cs, combo{b(0), b(1), b(2), b(3), b(4), b(5)})
	}
	return cs
}

// TestChartInvariants renders every combination of the documented switches
// and checks what must hold whatever the values: the container port is the
// port the binary listens on, probes and scrape endpoints name a port that
// exists, the grace period covers the drain, the drain has one knob, and no
// selector is left without something to select.
func TestChartInvariants(t *testing.T) {
	helmBin(t)
	for _, c := range allCombos() {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			data, err := yaml.Marshal(c.values())
			if err != nil {
				t.Fatal(err)
			}
			vf := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(vf, data, 0o600); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, c, render(t, vf))
		})
	}
}

type podTemplate struct {
	owner string
	spec  corev1.PodTemplateSpec
}

func checkInvariants(t *testing.T, c combo, objs map[string][]any) {
	t.Helper()
	if len(objs["ConfigMap"]) == 0 {
		t.Fatal("no ConfigMap")
	}
	cm := objs["ConfigMap"][0].(*corev1.ConfigMap)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatalf("rendered configuration does not load: %v", err)
	}
	if c.stream {
		if err := cfg.ValidateStream(); err != nil {
			t.Errorf("rendered configuration is not valid for stream: %v", err)
		}
	}
	_, portStr, _ := strings.Cut(cfg.HTTPAddr(config.StreamHTTPAddr), ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("http.addr %q: %v", cfg.HTTP.Addr, err)
	}
	wantDrain := 30 * time.Second
	if c.longDrain {
		wantDrain = 120 * time.Second
	}
	if got := cfg.Source.Kinesis.DrainTimeout; got != wantDrain {
		t.Errorf("configured drain_timeout %s, want drainTimeoutSeconds (%s)", got, wantDrain)
	}

	var pods []podTemplate
	if n := len(objs["Deployment"]); (n == 1) != c.stream {
		t.Errorf("%d Deployments with stream.enabled=%v", n, c.stream)
	}
	for _, o := range objs["Deployment"] {
		d := o.(*appsv1.Deployment)
		pods = append(pods, podTemplate{"Deployment " + d.Name, d.Spec.Template})
		grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		if grace < cfg.Source.Kinesis.DrainTimeout+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %s does not cover the drain %s plus the worker's 2 s stop grace", grace, cfg.Source.Kinesis.DrainTimeout)
		}
		if sel := labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels); !sel {
			t.Errorf("Deployment selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	if n := len(objs["Job"]); (n == 1) != c.replay {
		t.Errorf("%d Jobs with replay.enabled=%v", n, c.replay)
	}
	for _, o := range objs["Job"] {
		j := o.(*batchv1.Job)
		pods = append(pods, podTemplate{"Job " + j.Name, j.Spec.Template})
		var drain time.Duration
		for _, a := range j.Spec.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--drain-timeout="); ok {
				drain, _ = time.ParseDuration(v)
			}
		}
		if drain != wantDrain {
			t.Errorf("replay Job --drain-timeout %s, want drainTimeoutSeconds (%s)", drain, wantDrain)
		}
		if g := j.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < drain+5*time.Second {
			t.Errorf("replay Job terminationGracePeriodSeconds %v does not cover its drain %s", g, drain)
		}
		if c.extras && (j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion || *j.Spec.Completions != 3) {
			t.Errorf("replay.parallelism 3 did not render an Indexed Job of 3: %+v", j.Spec)
		}
	}
	for _, p := range pods {
		for _, ct := range p.spec.Spec.Containers {
			named := map[string]int32{}
			for _, cp := range ct.Ports {
				named[cp.Name] = cp.ContainerPort
			}
			if named["http"] != int32(port) {
				t.Errorf("%s: container port http = %d, the binary listens on %d (config.http.addr %q)", p.owner, named["http"], port, cfg.HTTP.Addr)
			}
			for _, env := range ct.Env {
				if strings.HasPrefix(env.Name, "EVENTRELAY_") && env.Name != "EVENTRELAY_SOURCE_KINESIS_WORKER_ID" {
					t.Errorf("%s: env %s overrides the configuration file: a second knob", p.owner, env.Name)
				}
			}
			for name, pr := range map[string]*corev1.Probe{"liveness": ct.LivenessProbe, "readiness": ct.ReadinessProbe, "startup": ct.StartupProbe} {
				if pr == nil || pr.HTTPGet == nil {
					continue
				}
				if !portExists(pr.HTTPGet.Port, named) {
					t.Errorf("%s: %s probe targets port %s, which the container does not expose", p.owner, name, pr.HTTPGet.Port.String())
				}
			}
		}
	}

	// Every selector selects something that was rendered.
	services := map[string]*corev1.Service{}
	for _, o := range objs["Service"] {
		s := o.(*corev1.Service)
		services[s.Name] = s
		var hit *podTemplate
		for i := range pods {
			if labelsMatch(s.Spec.Selector, pods[i].spec.Labels) {
				hit = &pods[i]
			}
		}
		if hit == nil {
			t.Errorf("Service %s selects %v: no rendered pod has those labels", s.Name, s.Spec.Selector)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if !portExists(sp.TargetPort, containerPorts(hit.spec)) {
				t.Errorf("Service %s targets port %s, which %s does not expose", s.Name, sp.TargetPort.String(), hit.owner)
			}
		}
	}
	for _, o := range objs["ServiceMonitor"] {
		sm := o.(*serviceMonitor)
		found := false
		for _, s := range services {
			if labelsMatch(sm.Spec.Selector.MatchLabels, s.Labels) {
				found = true
				for _, e := range sm.Spec.Endpoints {
					if !serviceHasPort(s, e.Port) {
						t.Errorf("ServiceMonitor endpoint port %q is not a port of Service %s", e.Port, s.Name)
					}
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor selects %v: no rendered Service has those labels", sm.Spec.Selector.MatchLabels)
		}
	}
	for _, o := range objs["PodMonitor"] {
		pm := o.(*podMonitor)
		found := false
		for _, p := range pods {
			if labelsMatch(pm.Spec.Selector.MatchLabels, p.spec.Labels) {
				found = true
				for _, e := range pm.Spec.PodMetricsEndpoints {
					if !portExists(intstr.FromString(e.Port), containerPorts(p.spec)) {
						t.Errorf("PodMonitor endpoint port %q is not a port of %s", e.Port, p.owner)
					}
				}
			}
		}
		if !found {
			t.Errorf("PodMonitor selects %v: no rendered pod has those labels", pm.Spec.Selector.MatchLabels)
		}
	}
	for _, o := range objs["PodDisruptionBudget"] {
		pdb := o.(*policyv1.PodDisruptionBudget)
		found := false
		for _, p := range pods {
			found = found || labelsMatch(pdb.Spec.Selector.MatchLabels, p.spec.Labels)
		}
		if !found {
			t.Errorf("PodDisruptionBudget selects %v: no rendered pod has those labels", pdb.Spec.Selector.MatchLabels)
		}
	}
	// Scraping: with monitoring on, every kind of pod rendered is scraped.
	if c.monitoring {
		if c.stream && len(objs["ServiceMonitor"]) != 1 {
			t.Errorf("monitoring on: %d ServiceMonitors for the stream pods", len(objs["ServiceMonitor"]))
		}
		if c.replay && len(objs["PodMonitor"]) != 1 {
			t.Errorf("monitoring on: %d PodMonitors for the replay pods", len(objs["PodMonitor"]))
		}
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false // an empty selector selects everything: never what the chart means
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containerPorts(p corev1.PodTemplateSpec) map[string]int32 {
	m := map[string]int32{}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			m[cp.Name] = cp.ContainerPort
		}
	}
	return m
}

func portExists(p intstr.IntOrString, named map[string]int32) bool {
	if p.Type == intstr.String {
		_, ok := named[p.StrVal]
		return ok
	}
	for _, n := range named {
		if n == p.IntVal {
			return true
		}
	}
	return false
}

func serviceHasPort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// TestChartRefusesContradictions: values that would render a pod that
// never becomes ready, or a drain with two knobs, are refused with the
// value's name.
func TestChartRefusesContradictions(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"config.source.kinesis.drain_timeout=60s", "set drainTimeoutSeconds instead"},
		{"config.http.addr=off", "config.http.addr is off"},
		{"config.http.addr=127.0.0.1:9090", `write it as ":9090"`},
		{"config.http.addr=localhost", "has no port"},
		{"secrets.externalId.name=ext", "config.aws.stream_role.role_arn is empty"},
		{"drainTimeoutSeconds=60", "terminationGracePeriodSeconds (45) must be at least drainTimeoutSeconds + 5 (65)"},
	} {
		out, err := helm(t, "template", "rel", chart, "--set", tc.set)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("--set %s: want a refusal containing %q, got err %v\n%s", tc.set, tc.want, err, firstLines(out, 5))
		}
	}
}

func firstLines(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	if len(l) > n {
		l = l[:n]
	}
	return fmt.Sprint(strings.Join(l, "\n"))
}
