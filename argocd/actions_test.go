package argocd_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/argocd"
	"github.com/atzedevries/canaryop/argocd/luatest"
)

var update = flag.Bool("update", false, "rewrite argocd-cm-patch.yaml from the scripts")

const patchHeader = `# Merge this into Argo CD's argocd-cm ConfigMap to install the CanaryApp health
# check and resource actions. The scripts are argocd/health-canaryapp.lua and
# argocd/actions/*.lua, word for word (generated: go test ./argocd -run
# TestConfigMapPatchIsGenerated -args -update):
#
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd/argocd-cm-patch.yaml
#
# or list it under ` + "`patches:`" + ` in a kustomization that builds argocd-cm.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`

func renderPatch(t *testing.T) string {
	t.Helper()
	actions, err := argocd.ActionsYAML()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(patchHeader)
	for _, kv := range [][2]string{{argocd.HealthCheckKey, argocd.HealthLua}, {argocd.ActionsKey, actions}} {
		b.WriteString("  " + kv[0] + ": |\n")
		for _, l := range strings.SplitAfter(kv[1], "\n") {
			switch {
			case l == "":
			case strings.TrimSpace(l) == "":
				b.WriteString("\n")
			default:
				b.WriteString("    " + l)
			}
		}
	}
	return b.String()
}

func TestConfigMapPatchIsGenerated(t *testing.T) {
	want := renderPatch(t)
	if *update {
		if err := os.WriteFile("argocd-cm-patch.yaml", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := argocd.Files.ReadFile("argocd-cm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want && !*update {
		t.Fatal("argocd-cm-patch.yaml is not what the scripts render; run go test ./argocd -run TestConfigMapPatchIsGenerated -args -update")
	}
}

// actionsConfig is Argo CD's ResourceActions, as it reads the key.
type actionsConfig struct {
	Discovery   string `json:"discovery.lua"`
	Definitions []struct {
		Name   string `json:"name"`
		Action string `json:"action.lua"`
	} `json:"definitions"`
}

func readActions(t *testing.T) actionsConfig {
	t.Helper()
	data, err := argocd.Files.ReadFile("argocd-cm-patch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(data, cm); err != nil {
		t.Fatal(err)
	}
	var ac actionsConfig
	if err := yaml.UnmarshalStrict([]byte(cm.Data[argocd.ActionsKey]), &ac); err != nil {
		t.Fatalf("%s does not parse as Argo CD's ResourceActions: %v", argocd.ActionsKey, err)
	}
	return ac
}

func TestConfigMapPatchHoldsEveryAction(t *testing.T) {
	ac := readActions(t)
	if want, _ := argocd.Actions.ReadFile("actions/discovery.lua"); ac.Discovery != string(want) {
		t.Error("discovery.lua differs from actions/discovery.lua")
	}
	var names []string
	for _, d := range ac.Definitions {
		names = append(names, d.Name)
		if want, _ := argocd.Actions.ReadFile("actions/" + d.Name + ".lua"); d.Action != string(want) {
			t.Errorf("action %s differs from actions/%s.lua", d.Name, d.Name)
		}
	}
	if strings.Join(names, ",") != strings.Join(argocd.ActionNames, ",") {
		t.Errorf("definitions %v, want %v", names, argocd.ActionNames)
	}
	if argocd.ActionsKey != "resource.customizations.actions."+v1.GroupVersion.Group+"_CanaryApp" {
		t.Errorf("ActionsKey %q does not name the CanaryApp group and kind", argocd.ActionsKey)
	}
}

// discover runs discovery.lua and returns the enabled actions.
func discover(t *testing.T, obj map[string]any) []string {
	t.Helper()
	v, done, err := luatest.Run(readActions(t).Discovery, obj)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	m, ok := luatest.FromLua(v).(map[string]any)
	if !ok {
		t.Fatalf("discovery returned %v", luatest.FromLua(v))
	}
	var enabled []string
	for _, name := range argocd.ActionNames {
		a, ok := m[name].(map[string]any)
		if !ok {
			t.Fatalf("discovery does not list %s", name)
		}
		if a["disabled"] != true {
			enabled = append(enabled, name)
		}
	}
	return enabled
}

// act runs one action and returns the object it returns.
func act(t *testing.T, name string, obj map[string]any) (map[string]any, error) {
	t.Helper()
	for _, d := range readActions(t).Definitions {
		if d.Name != name {
			continue
		}
		v, done, err := luatest.Run(d.Action, obj)
		if err != nil {
			return nil, err
		}
		defer done()
		if _, ok := v.(*lua.LTable); !ok {
			t.Fatalf("%s returned %s", name, v.Type())
		}
		return luatest.FromLua(v).(map[string]any), nil
	}
	t.Fatalf("no action %s", name)
	return nil, nil
}

func TestActionDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*v1.CanaryApp)
		want   string
	}{
		{"stable", stable(v1Image), "suspend"},
		{"canary running", then(stable(v1Image), canary(v2Image, 20, v1.ReasonAnalysing, "")), "abort,suspend"},
		{"waiting for approval", then(stable(v1Image), canary(v2Image, 50, v1.ReasonWaitingForApproval, ""),
			func(a *v1.CanaryApp) { a.Status.Approval = &v1.ApprovalStatus{Image: v2Image} }), "approve,abort,suspend"},
		{"suspended", then(stable(v1Image), canary(v2Image, 20, v1.ReasonSuspended, ""), func(a *v1.CanaryApp) { a.Spec.Suspend = true }), "abort,resume"},
		{"rolled back", then(stable(v1Image), func(a *v1.CanaryApp) { a.Spec.Image = v3Image }, failedInStatus(v3Image, "x")), "retry,suspend"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(discover(t, app(t, tc.mutate).Object), ","); got != tc.want {
				t.Errorf("enabled actions %q, want %q", got, tc.want)
			}
		})
	}
}

func annotation(obj map[string]any, key string) string {
	ann, _ := obj["metadata"].(map[string]any)["annotations"].(map[string]any)
	s, _ := ann[key].(string)
	return s
}

func TestActions(t *testing.T) {
	waiting := app(t, then(stable(v1Image), canary(v2Image, 50, v1.ReasonWaitingForApproval, ""),
		func(a *v1.CanaryApp) { a.Status.Approval = &v1.ApprovalStatus{Image: v2Image} })).Object
	out, err := act(t, "approve", waiting)
	if err != nil || out["spec"].(map[string]any)["approvedImage"] != v2Image {
		t.Errorf("approve: %v, spec %v", err, out["spec"])
	}
	if _, err := act(t, "approve", app(t, stable(v1Image)).Object); err == nil || !strings.Contains(err.Error(), "no canary waits for approval") {
		t.Errorf("approve without a gate: %v", err)
	}

	out, err = act(t, "abort", waiting)
	if err != nil || !strings.HasPrefix(annotation(out, v1.AbortAnnotation), "argocd-20") || annotation(out, v1.RequestedByAnnotation) != "argocd" {
		t.Errorf("abort: %v, annotations %q %q", err, annotation(out, v1.AbortAnnotation), annotation(out, v1.RequestedByAnnotation))
	}
	if _, err := act(t, "abort", app(t, stable(v1Image)).Object); err == nil {
		t.Error("abort without a canary succeeded")
	}

	// Git reverted to v1 and records v2; the operator's newest record is v3.
	rolledBack := app(t, then(stable(v1Image), func(a *v1.CanaryApp) {
		a.Spec.Image = v1Image
		a.Spec.FailedImages = []v1.FailedImage{{Image: v2Image}}
	}, failedInStatus(v3Image, "x"))).Object
	out, err = act(t, "retry", rolledBack)
	if f := strings.Fields(annotation(out, v1.RetryAnnotation)); err != nil || len(f) != 2 || f[1] != v3Image {
		t.Errorf("retry: %v, annotation %q, want the newest record %s", err, annotation(out, v1.RetryAnnotation), v3Image)
	}

	// spec.image itself recorded as failed is the one retried.
	out, err = act(t, "retry", app(t, then(stable(v1Image), func(a *v1.CanaryApp) { a.Spec.Image = v3Image }, failedInStatus(v3Image, "x"), failedInStatus(v2Image, "y"))).Object)
	if f := strings.Fields(annotation(out, v1.RetryAnnotation)); err != nil || len(f) != 2 || f[1] != v3Image {
		t.Errorf("retry of spec.image: %v, annotation %q", err, annotation(out, v1.RetryAnnotation))
	}

	out, err = act(t, "suspend", waiting)
	if err != nil || out["spec"].(map[string]any)["suspend"] != true {
		t.Errorf("suspend: %v", err)
	}
	out, err = act(t, "resume", out)
	if err != nil || out["spec"].(map[string]any)["suspend"] != false {
		t.Errorf("resume: %v", err)
	}
}
