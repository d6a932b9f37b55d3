package commitstatus

import (
	"strings"
	"testing"
	"unicode/utf8"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

const (
	v1img = "ghcr.io/acme/shop:v1"
	v2img = "ghcr.io/acme/shop:v2"
)

func app(mut func(st *v1.CanaryAppStatus)) *v1.CanaryApp {
	a := &v1.CanaryApp{}
	a.Status.StableImage = v1img
	a.Status.Phase = v1.PhaseStable
	mut(&a.Status)
	return a
}

func canary(st *v1.CanaryAppStatus) {
	st.Phase, st.CanaryImage, st.CanaryWeight = v1.PhaseProgressing, v2img, 25
	st.Checks = []v1.AnalysisCheck{{Image: v2img, Verdict: v1.CheckPass}, {Image: v2img, Verdict: v1.CheckPass}, {Image: v1img, Verdict: v1.CheckPass}}
}

func reported(st *v1.CanaryAppStatus) {
	st.CommitStatus = &v1.CommitStatusReport{Image: v2img, Revision: strings.Repeat("a", 40), State: Pending}
}

func TestWant(t *testing.T) {
	cases := []struct {
		name  string
		app   *v1.CanaryApp
		state string
		desc  string
	}{
		{"stable, nothing reported", app(func(*v1.CanaryAppStatus) {}), "", ""},
		{"analysing", app(canary), Pending, "canary :v2 at 25% of traffic"},
		{"at the gate", app(func(st *v1.CanaryAppStatus) {
			canary(st)
			st.Phase, st.CanaryWeight, st.Approval = v1.PhaseSuspended, 50, &v1.ApprovalStatus{Image: v2img}
		}), Pending, ":v2 waits for approval at 50% of traffic"},
		{"suspended", app(func(st *v1.CanaryAppStatus) { canary(st); st.Phase = v1.PhaseSuspended }), Pending, "canary :v2 suspended at 25% of traffic"},
		{"promoting", app(func(st *v1.CanaryAppStatus) { canary(st); st.Phase = v1.PhasePromoting }), Pending, "promoting :v2"},
		{"promoted, but never reported pending", app(func(st *v1.CanaryAppStatus) { st.StableImage = v2img }), "", ""},
		{"promoted", app(func(st *v1.CanaryAppStatus) {
			canary(st)
			reported(st)
			st.Phase, st.CanaryImage, st.StableImage = v1.PhaseStable, "", v2img
		}), Success, "promoted :v2 after 2 checks passed"},
		{"rolled back", app(func(st *v1.CanaryAppStatus) {
			canary(st)
			reported(st)
			st.Phase, st.CanaryImage = v1.PhaseFailed, ""
			st.FailedImages = []v1.FailedImage{{Image: v2img, Reason: "analysis failed at 25%:\nerror rate 3"}}
		}), Failure, "rolled back :v2: analysis failed at 25%: error rate 3"},
		{"stopped", app(func(st *v1.CanaryAppStatus) { reported(st) }), Error, "canary of :v2 stopped without a verdict: spec.image changed"},
		{"already reported the verdict, new canary", app(func(st *v1.CanaryAppStatus) {
			reported(st)
			st.CommitStatus.State = Success
			st.CanaryImage, st.Phase = "ghcr.io/acme/shop:v3", v1.PhaseProgressing
		}), Pending, "canary :v3 at 0% of traffic"},
	}
	for _, c := range cases {
		got, ok := Want(c.app)
		if ok != (c.state != "") || got.State != c.state || got.Description != c.desc {
			t.Errorf("%s: Want = %+v, %v; want state %q, %q", c.name, got, ok, c.state, c.desc)
		}
	}
}

func TestDescriptionIsOneBoundedLine(t *testing.T) {
	a := app(func(st *v1.CanaryAppStatus) {
		reported(st)
		st.Phase = v1.PhaseFailed
		st.FailedImages = []v1.FailedImage{{Image: v2img, Reason: "aborted by " + strings.Repeat("m\u202eallory\n", 60)}}
	})
	got, _ := Want(a)
	if n := utf8.RuneCountInString(got.Description); n > MaxDescription {
		t.Errorf("description of %d runes", n)
	}
	if strings.ContainsAny(got.Description, "\n\u202e") {
		t.Errorf("description %q holds a line break or a bidi override", got.Description)
	}
}

func TestShort(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/acme/shop:v2": ":v2", "localhost:5000/shop:v2": ":v2", "shop@sha256:abc": "@sha256:abc", "registry:5000/shop": "shop",
	} {
		if got := short(in); got != want {
			t.Errorf("short(%q) = %q, want %q", in, got, want)
		}
	}
}
