// Package deploy holds the deployment artifacts (Compose, Helm, Terraform,
// Ansible, monitoring). Its tests check them as data and with the real tools
// that run here: docker-compose config, helm lint/template, HCL parsing with
// tofu's formatter rules, ansible-playbook and ansible-lint.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"gopkg.in/yaml.v3"

	"github.com/llmo/llmo/internal/testenv"
)

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// --- Terraform ---

func tfFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join("terraform", "aws", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no terraform files: %v", err)
	}
	return files
}

// TestTerraformFormatted applies the same canonical formatting that
// `tofu fmt -check` does (hclwrite.Format) and fails on any difference.
func TestTerraformFormatted(t *testing.T) {
	for _, f := range tfFiles(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted (run tofu fmt)", f)
		}
	}
}

func TestTerraformResourcesAndWiring(t *testing.T) {
	p := hclparse.NewParser()
	declared := map[string]bool{} // "aws_vpc.main", "var.region", "local.name", "data.aws_x.y"
	var bodies []*hclsyntax.Body
	resourceTypes := map[string]int{}
	for _, f := range tfFiles(t) {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		body := file.Body.(*hclsyntax.Body)
		bodies = append(bodies, body)
		for _, b := range body.Blocks {
			switch b.Type {
			case "resource":
				declared[b.Labels[0]+"."+b.Labels[1]] = true
				resourceTypes[b.Labels[0]]++
			case "data":
				declared["data."+b.Labels[0]+"."+b.Labels[1]] = true
			case "variable":
				declared["var."+b.Labels[0]] = true
				if _, ok := b.Body.Attributes["description"]; !ok {
					t.Errorf("variable %s has no description", b.Labels[0])
				}
			case "locals":
				for name := range b.Body.Attributes {
					declared["local."+name] = true
				}
			case "output":
				if _, ok := b.Body.Attributes["description"]; !ok {
					t.Errorf("output %s has no description", b.Labels[0])
				}
			}
		}
	}
	for _, want := range []string{"aws_vpc", "aws_subnet", "aws_nat_gateway", "aws_ecs_cluster", "aws_ecs_capacity_provider",
		"aws_ecs_cluster_capacity_providers", "aws_ecs_task_definition", "aws_ecs_service", "aws_ecr_repository", "aws_lb",
		"aws_lb_target_group", "aws_lb_listener", "aws_efs_file_system", "aws_efs_mount_target", "aws_cloudwatch_log_group",
		"aws_appautoscaling_target", "aws_appautoscaling_policy", "aws_autoscaling_group"} {
		if resourceTypes[want] == 0 {
			t.Errorf("no %s resource", want)
		}
	}
	if resourceTypes["aws_subnet"] < 2 {
		t.Error("want public and private subnets")
	}
	// Every reference must name something declared.
	var check func(b *hclsyntax.Body)
	check = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			for _, tr := range a.Expr.Variables() {
				ref := traversalRef(tr)
				if ref == "" {
					continue
				}
				if !declared[ref] {
					t.Errorf("%s: reference to undeclared %s", a.SrcRange, ref)
				}
			}
		}
		for _, blk := range b.Blocks {
			check(blk.Body)
		}
	}
	for _, b := range bodies {
		check(b)
	}
	// Key wiring: the ALB health check probes /ready; the model runs on the
	// GPU capacity provider; the gateway uses DNS discovery.
	src := readAll(t, tfFiles(t))
	for _, want := range []string{`path                = "/ready"`, `capacity_provider = aws_ecs_capacity_provider.gpu.name`,
		`"--replica-dns", "model.${local.dns}:8001"`, `metric_name = "vllm_num_requests_waiting"`, `type = "GPU"`} {
		if !strings.Contains(src, want) {
			t.Errorf("terraform lacks %q", want)
		}
	}
}

func traversalRef(tr hcl.Traversal) string {
	root := tr.RootName()
	names := []string{root}
	for _, step := range tr[1:] {
		if a, ok := step.(hcl.TraverseAttr); ok {
			names = append(names, a.Name)
		} else {
			break
		}
	}
	switch root {
	case "var", "local":
		if len(names) >= 2 {
			return names[0] + "." + names[1]
		}
	case "data":
		if len(names) >= 3 {
			return strings.Join(names[:3], ".")
		}
	case "count", "each", "path", "terraform", "self":
		return ""
	default:
		if strings.HasPrefix(root, "aws_") && len(names) >= 2 {
			return names[0] + "." + names[1]
		}
	}
	return ""
}

func readAll(t *testing.T, files []string) string {
	var b strings.Builder
	for _, f := range files {
		s, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(s)
	}
	return b.String()
}

// --- Helm ---

type k8sObj struct {
	Kind     string         `yaml:"kind"`
	Metadata map[string]any `yaml:"metadata"`
	Spec     map[string]any `yaml:"spec"`
}

func helmTemplate(t *testing.T, helm string, sets ...string) map[string]k8sObj {
	args := []string{"template", "rel", "helm/llmo", "--namespace", "prod"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out := run(t, ".", helm, args...)
	objs := map[string]k8sObj{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o k8sObj
		if err := dec.Decode(&o); err != nil {
			break
		}
		if o.Kind == "" {
			continue
		}
		objs[o.Kind+"/"+o.Metadata["name"].(string)] = o
	}
	return objs
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestHelmChart(t *testing.T) {
	helm := testenv.Binary(t, "helm")
	run(t, ".", helm, "lint", "--strict", "helm/llmo")
	run(t, ".", helm, "lint", "--strict", "helm/llmo", "--set", "model.autoscaling.mode=hpa", "--set", "gateway.auth.enabled=true")

	objs := helmTemplate(t, helm, "model.nodeSelector.gpu=true", "model.tolerations[0].key=nvidia.com/gpu",
		"model.tolerations[0].operator=Exists", "model.tolerations[0].effect=NoSchedule")
	for _, want := range []string{"Deployment/rel-llmo-gateway", "Deployment/rel-llmo-model", "Deployment/rel-llmo-cache",
		"StatefulSet/rel-llmo-storage", "Service/rel-llmo-model-headless", "PodDisruptionBudget/rel-llmo-gateway",
		"PodDisruptionBudget/rel-llmo-model", "ScaledObject/rel-llmo-model", "ServiceMonitor/rel-llmo", "Deployment/rel-llmo-redis"} {
		if _, ok := objs[want]; !ok {
			t.Errorf("rendered chart lacks %s", want)
		}
	}
	if got := dig(objs["Service/rel-llmo-model-headless"].Spec, "clusterIP"); got != "None" {
		t.Errorf("model Service clusterIP = %v, want None (headless)", got)
	}
	gw := objs["Deployment/rel-llmo-gateway"].Spec
	args := dig(gw, "template", "spec", "containers", 0, "args").([]any)
	joined := ""
	for _, a := range args {
		joined += a.(string) + " "
	}
	if !strings.Contains(joined, "--replica-dns=rel-llmo-model-headless.prod.svc.cluster.local:8001") {
		t.Errorf("gateway does not discover the headless model service: %s", joined)
	}
	for _, name := range []string{"Deployment/rel-llmo-gateway", "Deployment/rel-llmo-model", "Deployment/rel-llmo-cache", "StatefulSet/rel-llmo-storage"} {
		spec := objs[name].Spec
		c := dig(spec, "template", "spec", "containers", 0)
		if dig(c, "livenessProbe", "httpGet", "path") != "/health" || dig(c, "readinessProbe", "httpGet", "path") != "/ready" {
			t.Errorf("%s: probes not on /health and /ready", name)
		}
		grace := dig(spec, "template", "spec", "terminationGracePeriodSeconds")
		sleep := dig(c, "lifecycle", "preStop", "sleep", "seconds")
		// Grace must cover preStop sleep + drain (30s default) + margin.
		if g, ok := grace.(int); !ok || sleep == nil || g < sleep.(int)+30 {
			t.Errorf("%s: terminationGracePeriodSeconds %v does not cover preStop %v + drain 30s", name, grace, sleep)
		}
		env := dig(c, "env").([]any)
		found := false
		for _, e := range env {
			if dig(e, "name") == "DRAIN_TIMEOUT" && dig(e, "value") == "30s" {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: DRAIN_TIMEOUT not set to match the grace period", name)
		}
	}
	model := objs["Deployment/rel-llmo-model"].Spec
	if fmt.Sprint(dig(model, "template", "spec", "nodeSelector", "gpu")) != "true" || dig(model, "template", "spec", "tolerations", 0, "key") != "nvidia.com/gpu" {
		t.Error("GPU nodeSelector/tolerations from values not applied to the model pods")
	}
	if dig(model, "replicas") != nil {
		t.Error("model replicas must be left to the autoscaler when autoscaling is on")
	}
	q := dig(objs["ScaledObject/rel-llmo-model"].Spec, "triggers", 0, "metadata", "query")
	if s, _ := q.(string); !strings.Contains(s, "vllm:num_requests_waiting") {
		t.Errorf("KEDA trigger query = %v", q)
	}

	hpa := helmTemplate(t, helm, "model.autoscaling.mode=hpa")
	if _, ok := hpa["HorizontalPodAutoscaler/rel-llmo-model"]; !ok {
		t.Error("mode=hpa renders no HPA")
	}
	fixed := helmTemplate(t, helm, "model.autoscaling.mode=none", "model.replicas=3", "redis.enabled=false", "serviceMonitor.enabled=false")
	if dig(fixed["Deployment/rel-llmo-model"].Spec, "replicas") != 3 {
		t.Error("mode=none does not pin model replicas")
	}
	if _, ok := fixed["Deployment/rel-llmo-redis"]; ok {
		t.Error("redis.enabled=false still renders Redis")
	}
}

// --- Compose ---

func TestComposeConfig(t *testing.T) {
	dc := testenv.Binary(t, "docker-compose")
	out := run(t, "..", dc, "-f", "docker-compose.yml", "--profile", "edge", "--profile", "monitoring", "config")
	var cfg struct {
		Services map[string]map[string]any `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"gateway", "model", "cache", "redis", "storage", "traefik", "prometheus", "alertmanager", "grafana", "node-exporter", "cadvisor"} {
		if _, ok := cfg.Services[s]; !ok {
			t.Errorf("compose lacks service %s", s)
		}
	}
	gwCmd := dig(cfg.Services["gateway"], "command")
	if s := strings.Join(toStrings(gwCmd), " "); !strings.Contains(s, "--replica-dns model:8001") || !strings.Contains(s, "--cache http://cache:8002") {
		t.Errorf("gateway command = %s", s)
	}
	for _, s := range []string{"gateway", "model", "cache", "storage"} {
		if dig(cfg.Services[s], "healthcheck", "test") == nil {
			t.Errorf("%s has no healthcheck", s)
		}
	}
	run(t, "..", dc, "-f", "docker-compose.yml", "config", "-q")
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// --- Ansible ---

func TestAnsiblePlaybook(t *testing.T) {
	ap := testenv.Binary(t, "ansible-playbook")
	lint := testenv.Binary(t, "ansible-lint")
	dir := filepath.Join("ansible")
	run(t, dir, ap, "-i", "inventory/example.ini", "playbooks/deploy_microservices.yml", "--syntax-check")
	run(t, dir, lint, "playbooks/deploy_microservices.yml")

	// A real run into a throwaway root: files are laid down exactly as on a
	// host, without systemd or package installs.
	bin := testenv.Llmo(t)
	root := t.TempDir()
	run(t, dir, ap, "-i", "inventory/local.ini", "playbooks/deploy_microservices.yml",
		"-e", "llmo_root="+root, "-e", "llmo_service_manager=none", "-e", "llmo_install_packages=false",
		"-e", "llmo_manage_user=false", "-e", "llmo_binary_src="+bin)
	for _, f := range []string{"usr/local/bin/llmo", "etc/systemd/system/llmo@.service", "etc/llmo/gateway.env",
		"etc/llmo/model.env", "etc/llmo/cache.env", "etc/llmo/storage.env", "etc/llmo/prometheus.yml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("playbook did not write %s", f)
		}
	}
	gw, _ := os.ReadFile(filepath.Join(root, "etc/llmo/gateway.env"))
	if !strings.Contains(string(gw), "--replica http://localhost:8001") {
		t.Errorf("gateway.env = %s", gw)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/llmo@.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/llmo serve %i") {
		t.Errorf("unit = %s", unit)
	}
	out, err := exec.Command(filepath.Join(root, "usr/local/bin/llmo"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "llmo ") {
		t.Errorf("installed binary does not run: %v %s", err, out)
	}
}
