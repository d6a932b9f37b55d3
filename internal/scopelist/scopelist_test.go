package scopelist

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	got := Split([]byte(" team-a, ,team-b\r\nteam-*\n"))
	if want := []string{"team-a", "team-b", "team-*"}; !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	if got := Split(nil); got != nil {
		t.Fatalf("Split(nil) = %q", got)
	}
}

func TestAnyGlob(t *testing.T) {
	for _, tc := range []struct {
		globs []string
		s     string
		want  bool
	}{
		{[]string{"team-a"}, "team-a", true},
		{[]string{"team-a"}, "team-ab", false},
		{[]string{"team-*"}, "team-b", true},
		{[]string{"team-*"}, "evil", false},
		{[]string{"*"}, "anything", true},
		{[]string{"[team"}, "[team", false}, // malformed: matches nothing
		{nil, "team-a", false},
	} {
		if got := AnyGlob(tc.globs, tc.s); got != tc.want {
			t.Errorf("AnyGlob(%q, %q) = %v, want %v", tc.globs, tc.s, got, tc.want)
		}
	}
}
