package argocd_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/argocd"
	"github.com/atzedevries/canaryop/argocd/luatest"
)

// runHealth runs a health script as Argo CD runs one from argocd-cm
// (luatest) and reads the returned table's status and message back.
func runHealth(t *testing.T, script string, obj *unstructured.Unstructured) (status, message string, err error) {
	t.Helper()
	v, done, err := luatest.Run(script, obj.Object)
	if err != nil {
		return "", "", err
	}
	defer done()
	ret, ok := v.(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, Argo CD expects a table", v.Type())
	}
	status, message = luatest.String(ret.RawGetString("status")), luatest.String(ret.RawGetString("message"))
	switch status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("the script returned status %q, which Argo CD turns into Unknown", status)
	}
	return status, message, nil
}

const (
	v1Image = "atzedevries/go-status-code-server:v1"
	v2Image = "atzedevries/go-status-code-server:v2"
	v3Image = "atzedevries/go-status-code-server:v3"
)

func cond(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

// app is a CanaryApp at generation 4 as the API server would return it,
// after mutate changed it, converted to unstructured through JSON as Argo
// CD's cluster cache holds it.
func app(t *testing.T, mutate func(*v1.CanaryApp)) *unstructured.Unstructured {
	t.Helper()
	a := &v1.CanaryApp{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "CanaryApp"},
		ObjectMeta: metav1.ObjectMeta{Name: "canaryapp-sample", Namespace: "default", Generation: 4},
		Spec: v1.CanaryAppSpec{
			Image: v2Image, ImageListenPort: 8088, Replicas: 2, TestReplicas: 1,
			PrometheusQuery: `increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2`,
			PrometheusURL:   "http://prometheus.istio-system.svc:9090",
		},
	}
	mutate(a)
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	// The API server keeps no status from a create (status is a
	// subresource), so before the operator's first update there is none;
	// json.Marshal would still write the non-omitempty canaryWeight.
	if equality.Semantic.DeepEqual(a.Status, v1.CanaryAppStatus{}) {
		unstructured.RemoveNestedField(u.Object, "status")
	}
	return u
}

func stable(image string) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		a.Status = v1.CanaryAppStatus{
			ObservedGeneration: a.Generation,
			Phase:              v1.PhaseStable,
			StableImage:        image,
			Conditions: []metav1.Condition{
				cond(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable, "Running "+image+" with all traffic"),
				cond(v1.ConditionProgressing, metav1.ConditionFalse, v1.ReasonStable, ""),
				cond(v1.ConditionStalled, metav1.ConditionFalse, v1.ReasonStable, ""),
			},
		}
	}
}

func then(fs ...func(*v1.CanaryApp)) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		for _, f := range fs {
			f(a)
		}
	}
}

func setCondition(c metav1.Condition) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		for i := range a.Status.Conditions {
			if a.Status.Conditions[i].Type == c.Type {
				a.Status.Conditions[i] = c
				return
			}
		}
		a.Status.Conditions = append(a.Status.Conditions, c)
	}
}

func canary(image string, weight int32, reason, message string) func(*v1.CanaryApp) {
	return then(setCondition(cond(v1.ConditionProgressing, metav1.ConditionTrue, reason, message)),
		func(a *v1.CanaryApp) {
			a.Spec.Image = image
			a.Status.CanaryImage = image
			a.Status.CanaryWeight = weight
			a.Status.Phase = v1.PhaseProgressing
		})
}

func failedInStatus(image, reason string) func(*v1.CanaryApp) {
	return func(a *v1.CanaryApp) {
		a.Status.FailedImages = append(a.Status.FailedImages, v1.FailedImage{Image: image, Reason: reason})
	}
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		name          string
		mutate        func(*v1.CanaryApp)
		want          string
		wantInMessage []string
	}{
		{
			name:          "stable",
			mutate:        stable(v2Image),
			want:          "Healthy",
			wantInMessage: []string{v1.ReasonStable, v2Image},
		},
		{
			name:          "canary analysing",
			mutate:        then(stable(v1Image), canary(v2Image, 20, v1.ReasonAnalysing, "Check passed")),
			want:          "Progressing",
			wantInMessage: []string{"Canary " + v2Image + " at weight 20%", v1.ReasonAnalysing},
		},
		{
			name: "waiting at the approval gate",
			mutate: then(stable(v1Image), canary(v2Image, 50, v1.ReasonWaitingForApproval, "waits for approval"),
				func(a *v1.CanaryApp) { a.Status.Approval = &v1.ApprovalStatus{Image: v2Image} }),
			want:          "Suspended",
			wantInMessage: []string{v2Image, "weight 50%", "approvedImage"},
		},
		{
			name: "suspended by spec.suspend",
			mutate: then(stable(v1Image), canary(v2Image, 20, v1.ReasonSuspended, ""),
				func(a *v1.CanaryApp) { a.Spec.Suspend = true; a.Status.SuspendedAt = &metav1.Time{Time: time.Now()} }),
			want:          "Suspended",
			wantInMessage: []string{v2Image, "weight 20%", "spec.suspend"},
		},
		{
			name:          "waiting for the canary Deployment",
			mutate:        then(stable(v1Image), canary(v2Image, 0, v1.ReasonWaitingForCanary, "")),
			want:          "Progressing",
			wantInMessage: []string{"at weight 0%", v1.ReasonWaitingForCanary},
		},
		{
			name: "promoting",
			mutate: then(stable(v1Image), canary(v2Image, 50, v1.ReasonPromoting, "Rolling out "+v2Image+" to the primary"),
				func(a *v1.CanaryApp) { a.Status.Phase = v1.PhasePromoting }),
			want:          "Progressing",
			wantInMessage: []string{v1.ReasonPromoting},
		},
		{
			name: "rolled back, Git still names the failed image",
			mutate: then(stable(v2Image), func(a *v1.CanaryApp) { a.Spec.Image = v3Image },
				failedInStatus(v3Image, "AnalysisFailed: 8 errors"),
				setCondition(cond(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonRolledBack, "Running "+v2Image))),
			want:          "Degraded",
			wantInMessage: []string{v3Image, "AnalysisFailed: 8 errors"},
		},
		{
			name: "rolled back and the write-back is not yet observed",
			mutate: then(stable(v2Image), func(a *v1.CanaryApp) {
				a.Spec.Image = v3Image
				a.Status.ObservedGeneration = a.Generation - 1
			}, failedInStatus(v3Image, "")),
			want:          "Degraded",
			wantInMessage: []string{v3Image + " failed its canary;"},
		},
		{
			name: "spec.failedImages names spec.image, before any status",
			mutate: func(a *v1.CanaryApp) {
				a.Spec.Image = v3Image
				a.Spec.FailedImages = []v1.FailedImage{{Image: v3Image}}
			},
			want:          "Degraded",
			wantInMessage: []string{v3Image},
		},
		{
			name: "Git reverted to the stable image: not yet observed",
			mutate: then(stable(v2Image), failedInStatus(v3Image, "AnalysisFailed"),
				func(a *v1.CanaryApp) { a.Status.ObservedGeneration = a.Generation - 1 }),
			want:          "Progressing",
			wantInMessage: []string{"generation 4"},
		},
		{
			name:          "Git reverted to the stable image: observed",
			mutate:        then(stable(v2Image), failedInStatus(v3Image, "AnalysisFailed")),
			want:          "Healthy",
			wantInMessage: []string{v1.ReasonStable},
		},
		{
			name: "stalled on a foreign object",
			mutate: then(stable(v2Image), setCondition(cond(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonForeignObject,
				"Deployment default/canaryapp-sample-canary exists and is not owned by this CanaryApp"))),
			want:          "Degraded",
			wantInMessage: []string{"Stalled", v1.ReasonForeignObject, "canaryapp-sample-canary"},
		},
		{
			name: "stalled, but the spec changed since",
			mutate: then(stable(v2Image), setCondition(cond(v1.ConditionStalled, metav1.ConditionTrue, v1.ReasonInvalidSpec, "")),
				func(a *v1.CanaryApp) { a.Status.ObservedGeneration = 3 }),
			want: "Progressing",
		},
		{
			name:          "no status yet",
			mutate:        func(*v1.CanaryApp) {},
			want:          "Progressing",
			wantInMessage: []string{"Waiting for the operator to report status"},
		},
		{
			name:          "old observedGeneration while Ready",
			mutate:        then(stable(v1Image), func(a *v1.CanaryApp) { a.Status.ObservedGeneration = 2 }),
			want:          "Progressing",
			wantInMessage: []string{"generation 4"},
		},
		{
			name: "status without observedGeneration",
			mutate: then(stable(v1Image), func(a *v1.CanaryApp) {
				a.Status.ObservedGeneration = 0
			}),
			want: "Progressing",
		},
		{
			name:          "primary not ready, nothing progressing",
			mutate:        then(stable(v2Image), setCondition(cond(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonPrimaryNotReady, "0 of 2 pods available"))),
			want:          "Progressing",
			wantInMessage: []string{"Not ready", v1.ReasonPrimaryNotReady, "0 of 2"},
		},
		{
			name: "status without conditions",
			mutate: func(a *v1.CanaryApp) {
				a.Status.ObservedGeneration = a.Generation
				a.Status.Phase = v1.PhaseInitializing
			},
			want:          "Progressing",
			wantInMessage: []string{"readiness"},
		},
		{
			name:          "another image failed before",
			mutate:        then(stable(v2Image), failedInStatus(v3Image, ""), func(a *v1.CanaryApp) { a.Spec.FailedImages = []v1.FailedImage{{Image: v1Image}} }),
			want:          "Healthy",
			wantInMessage: []string{v1.ReasonStable},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, message, err := runHealth(t, argocd.HealthLua, app(t, tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.want {
				t.Errorf("status = %s (%q), want %s", status, message, tc.want)
			}
			if message == "" {
				t.Error("empty message: the Argo CD UI shows it next to the status")
			}
			for _, s := range tc.wantInMessage {
				if !strings.Contains(message, s) {
					t.Errorf("message %q does not mention %q", message, s)
				}
			}
		})
	}
}

// TestHarnessIsAsStrictAsArgoCD makes sure runHealth would catch a script
// that Argo CD cannot run: one that uses the string library, or returns
// something other than a table with a known status.
func TestHarnessIsAsStrictAsArgoCD(t *testing.T) {
	obj := app(t, stable(v2Image))
	for name, script := range map[string]string{
		"string library": `return {status = string.upper("healthy")}`,
		"string method":  `return {status = ("Healthy"):sub(1)}`,
		"os library":     `return {status = "Healthy", message = os.getenv("HOME")}`,
		"no table":       `return "Healthy"`,
		"unknown status": `return {status = "Fine"}`,
		"endless":        `while true do end`,
		"syntax error":   `hs = {`,
	} {
		if status, _, err := runHealth(t, script, obj); err == nil {
			t.Errorf("%s: accepted, status %q", name, status)
		}
	}
	if status, _, err := runHealth(t, `return {status = obj.spec.image == "`+v2Image+`" and "Healthy" or "Degraded"}`, obj); err != nil || status != "Healthy" {
		t.Errorf("obj is not passed as a table: %s, %v", status, err)
	}
}
