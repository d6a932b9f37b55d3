package main

import "testing"

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"atzedevries/go-status-code-server:v1":                 "v1",
		"atzedevries/go-status-code-server:v3":                 "v3",
		"atzedevries/go-status-code-server":                    "latest",
		"registry.example.com:5000/team/app":                   "latest",
		"registry.example.com:5000/team/app:v2":                "v2",
		"app:v2@sha256:" + sixtyFourHex:                        "v2",
		"registry.example.com:5000/app@sha256:" + sixtyFourHex: "latest",
		"app:":   "latest",
		"":       "latest",
		"app:v2": "v2",
	} {
		if got := ImageVersion(image); got != want {
			t.Errorf("ImageVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

const sixtyFourHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRespondReproducesTheDemoStory(t *testing.T) {
	r := NewResponder([]string{"v3"})
	for _, tc := range []struct {
		version, path string
		want          int
	}{
		{"v1", PathHello, 200},
		{"v2", PathHello, 200},
		{"v3", PathHello, 200},
		{"v1", PathNotHello, 200},
		{"v2", PathNotHello, 200},
		{"v3", PathNotHello, 500},
		{"latest", PathNotHello, 200},
		{"v3", "/other", 404},
	} {
		if got := r.Respond(tc.version, tc.path); got != tc.want {
			t.Errorf("Respond(%q, %q) = %d, want %d", tc.version, tc.path, got, tc.want)
		}
	}
}

func TestRespondFailingVersionsAreConfigurable(t *testing.T) {
	r := NewResponder([]string{"v2", "v4"})
	if got := r.Respond("v3", PathNotHello); got != 200 {
		t.Errorf("v3 not named failing: got %d, want 200", got)
	}
	for _, v := range []string{"v2", "v4"} {
		if got := r.Respond(v, PathNotHello); got != 500 {
			t.Errorf("%s named failing: got %d, want 500", v, got)
		}
	}
	if got := NewResponder(nil).Respond("v3", PathNotHello); got != 200 {
		t.Errorf("no failing versions: got %d, want 200", got)
	}
}
