package routepolicy

import (
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        []rule
		wantString  string
	}{
		{name: "empty", value: "", wantString: ""},
		{name: "only separators and spaces", value: " ; ;", wantString: ""},
		{
			name:  "the example",
			value: "istio-system/public-gateway=*.{namespace}.example.com,shop.example.com@team-a,team-b",
			want: []rule{{
				gwNamespace: "istio-system", gwName: "public-gateway",
				hosts:      []string{"*.{namespace}.example.com", "shop.example.com"},
				namespaces: []string{"team-a", "team-b"},
			}},
			wantString: "istio-system/public-gateway=*.{namespace}.example.com,shop.example.com@team-a,team-b",
		},
		{
			name:  "several entries, spaces, own-namespace gateway, no hosts",
			value: " canaryapp-gateway = * @ default ;istio-system/internal@*; ",
			want: []rule{
				{gwName: "canaryapp-gateway", hosts: []string{"*"}, namespaces: []string{"default"}},
				{gwNamespace: "istio-system", gwName: "internal", namespaces: []string{"*"}},
			},
			wantString: "canaryapp-gateway=*@default;istio-system/internal@*",
		},
		{
			name:       "duplicates within an entry collapse",
			value:      "gw=a.example.com,a.example.com@x,x",
			want:       []rule{{gwName: "gw", hosts: []string{"a.example.com"}, namespaces: []string{"x"}}},
			wantString: "gw=a.example.com@x",
		},
		{
			name:       "dotted gateway name",
			value:      "istio-system/gw.v2@team-*",
			want:       []rule{{gwNamespace: "istio-system", gwName: "gw.v2", namespaces: []string{"team-*"}}},
			wantString: "istio-system/gw.v2@team-*",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, p.rules, cmp.AllowUnexported(rule{})); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			if got := p.String(); got != tc.wantString {
				t.Errorf("String() = %q, want %q", got, tc.wantString)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		value, wantEntry, wantMsg string
	}{
		{"istio-system/gw=*.example.com", "istio-system/gw=*.example.com", `no "@namespaces"`},
		{"ok@*;bad", "bad", `no "@namespaces"`},
		{"gw@a@b", "gw@a@b", `more than one "@"`},
		{"gw=a=b@x", "gw=a=b@x", `more than one "="`},
		{"mesh=*@*", "mesh=*@*", `the "mesh" gateway needs no entry`},
		{"istio-system/mesh@*", "istio-system/mesh@*", `the "mesh" gateway needs no entry`},
		{"Istio-System/gw@*", "Istio-System/gw@*", `gateway namespace "Istio-System"`},
		{"a/b/c@*", "a/b/c@*", `gateway name "b/c"`},
		{"/gw@*", "/gw@*", `gateway namespace ""`},
		{"@*", "@*", `gateway name ""`},
		{"gw=@*", "gw=@*", "empty host"},
		{"gw=a.example.com,@*", "gw=a.example.com,@*", "empty host"},
		{"gw=*foo.example.com@*", "gw=*foo.example.com@*", `host "*foo.example.com"`},
		{"gw=Shop.example.com@*", "gw=Shop.example.com@*", `host "Shop.example.com"`},
		{"gw=a.*.example.com@*", "gw=a.*.example.com@*", `host "a.*.example.com"`},
		{"gw={ns}.example.com@*", "gw={ns}.example.com@*", `host "{ns}.example.com"`},
		{"gw=x@", "gw=x@", "empty namespace glob"},
		{"gw=x@team_a", "gw=x@team_a", `namespace glob "team_a"`},
		{"gw=x@team-a,", "gw=x@team-a,", "empty namespace glob"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			_, err := Parse(tc.value)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), "entry \""+tc.wantEntry+"\"") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q: want it to name entry %q and say %q", err, tc.wantEntry, tc.wantMsg)
			}
		})
	}
}

func TestPolicyIsAFlag(t *testing.T) {
	var p Policy
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.Var(&p, "allowed-gateways", FlagUsage)
	if err := fs.Parse([]string{"--allowed-gateways=gw=*@a", "--allowed-gateways=istio-system/public@b"}); err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "gw=*@a;istio-system/public@b"; got != want {
		t.Errorf("after two flags: %q, want %q", got, want)
	}
	if err := p.Set("ok@x;bad"); err == nil {
		t.Error("Set(bad): want an error")
	}
	if got, want := p.String(), "gw=*@a;istio-system/public@b"; got != want {
		t.Errorf("a failed Set changed the policy: %q", got)
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*", "*", true},
		{"*", "a.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "*.example.com", true},
		{"*.example.com", "*.a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*", false},
		{"*.example.com", "aexample.com", false},
		{"*.a.example.com", "*.example.com", false},
		{"shop.example.com", "shop.example.com", true},
		{"shop.example.com", "*.example.com", false},
		{"shop.example.com", "a.shop.example.com", false},
	} {
		if got := covers(tc.pattern, tc.host); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		glob, s string
		want    bool
	}{
		{"*", "", true},
		{"*", "team-a", true},
		{"team-a", "team-a", true},
		{"team-a", "team-ab", false},
		{"team-*", "team-a", true},
		{"team-*", "team-", true},
		{"team-*", "xteam-a", false},
		{"*-prod", "shop-prod", true},
		{"*-prod", "shop-prod-2", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"**", "x", true},
	} {
		if got := globMatch(tc.glob, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.glob, tc.s, got, tc.want)
		}
	}
}

func TestResolveGateway(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		want   Gateway
		wantOK bool
	}{
		{"gw", Gateway{"team-a", "gw"}, true},
		{"istio-system/gw", Gateway{"istio-system", "gw"}, true},
		{"./gw", Gateway{"team-a", "gw"}, true},
		{"istio-system/gw.v2", Gateway{"istio-system", "gw.v2"}, true},
		// Istio's legacy form: not a dotted gateway of team-a.
		{"public-gateway.istio-system", Gateway{"istio-system", "public-gateway"}, true},
		{"public-gateway.istio-system.svc.cluster.local", Gateway{"istio-system", "public-gateway"}, true},
		{"mesh", Gateway{}, false},
		{"gw.", Gateway{}, false},
		{"a/b/c", Gateway{}, false},
		{"/gw", Gateway{}, false},
		{"Gw", Gateway{}, false},
		{"", Gateway{}, false},
	} {
		got, ok := ResolveGateway(tc.ref, "team-a")
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ResolveGateway(%q) = %v, %v; want %v, %v", tc.ref, got, ok, tc.want, tc.wantOK)
		}
	}
}

const examplePolicy = "istio-system/public-gateway=*.{namespace}.example.com,shop.example.com@team-*,prod;" +
	"canaryapp-gateway=*@default;" +
	"istio-system/internal@*"

func TestDecide(t *testing.T) {
	p, err := Parse(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	public := Gateway{"istio-system", "public-gateway"}
	internal := Gateway{"istio-system", "internal"}
	for _, tc := range []struct {
		name          string
		policy        *Policy
		ns            string
		gateways      []string
		hosts         []string
		wantGateways  []Gateway
		wantHosts     []string
		wantRefused   []Refusal
		refusedPhrase string
	}{
		{name: "nothing asked", policy: p, ns: "team-a"},
		{
			name: "own hosts and mesh need no rule", policy: nil, ns: "team-a",
			gateways: []string{"mesh"},
			hosts:    []string{"shop", "shop.team-a.svc", "shop.team-a.svc.cluster.local"},
		},
		{
			name: "default policy refuses the H3 exploit", policy: nil, ns: "evil",
			gateways: []string{"istio-system/public-gateway"},
			hosts:    []string{"sso.example.com", "payments.team-b.svc.cluster.local"},
			wantRefused: []Refusal{
				{Gateway: "istio-system/public-gateway", Rule: "no --allowed-gateways entry allows gateway istio-system/public-gateway for namespace evil"},
				{Host: "sso.example.com", Rule: "hosts other than the app's own Service are never routed on the mesh, only through an allowed gateway, and spec.gateways names none"},
				{Host: "payments.team-b.svc.cluster.local", Rule: "hosts other than the app's own Service are never routed on the mesh, only through an allowed gateway, and spec.gateways names none"},
			},
		},
		{
			name: "hosts without a gateway are never put on the mesh", policy: p, ns: "default",
			hosts: []string{"*"},
			wantRefused: []Refusal{
				{Host: "*", Rule: "hosts other than the app's own Service are never routed on the mesh, only through an allowed gateway, and spec.gateways names none"},
			},
		},
		{
			name: "allowed gateway and hosts, namespace placeholder", policy: p, ns: "team-a",
			gateways:     []string{"istio-system/public-gateway", "mesh"},
			hosts:        []string{"shop.example.com", "www.team-a.example.com", "*.team-a.example.com", "shop"},
			wantGateways: []Gateway{public},
			wantHosts:    []string{"shop.example.com", "www.team-a.example.com", "*.team-a.example.com"},
		},
		{
			name: "another namespace's hosts are refused, the rule for this one named", policy: p, ns: "team-a",
			gateways:     []string{"istio-system/public-gateway"},
			hosts:        []string{"www.team-b.example.com", "*.example.com", "*", "www.team-a.example.com"},
			wantGateways: []Gateway{public},
			wantHosts:    []string{"www.team-a.example.com"},
			wantRefused: []Refusal{
				{Gateway: "istio-system/public-gateway", Host: "www.team-b.example.com", Rule: "--allowed-gateways allows only *.team-a.example.com, shop.example.com besides the app's own Service host on gateway istio-system/public-gateway for namespace team-a"},
				{Gateway: "istio-system/public-gateway", Host: "*.example.com", Rule: "--allowed-gateways allows only *.team-a.example.com, shop.example.com besides the app's own Service host on gateway istio-system/public-gateway for namespace team-a"},
				{Gateway: "istio-system/public-gateway", Host: "*", Rule: "--allowed-gateways allows only *.team-a.example.com, shop.example.com besides the app's own Service host on gateway istio-system/public-gateway for namespace team-a"},
			},
		},
		{
			name: "namespace glob does not match", policy: p, ns: "staging",
			gateways:     []string{"istio-system/public-gateway", "istio-system/internal"},
			wantGateways: []Gateway{internal},
			wantRefused: []Refusal{
				{Gateway: "istio-system/public-gateway", Rule: "no --allowed-gateways entry allows gateway istio-system/public-gateway for namespace staging"},
			},
		},
		{
			name: "own-namespace gateway rule does not reach another namespace's gateway", policy: p, ns: "default",
			gateways:     []string{"canaryapp-gateway", "team-a/canaryapp-gateway", "default/canaryapp-gateway", "./canaryapp-gateway"},
			hosts:        []string{"*"},
			wantGateways: []Gateway{{"default", "canaryapp-gateway"}},
			wantHosts:    []string{"*"},
			wantRefused: []Refusal{
				{Gateway: "team-a/canaryapp-gateway", Rule: "no --allowed-gateways entry allows gateway team-a/canaryapp-gateway for namespace default"},
			},
		},
		{
			name: "legacy dotted reference is the other namespace's gateway", policy: p, ns: "default",
			gateways: []string{"canaryapp-gateway.team-a"},
			wantRefused: []Refusal{
				{Gateway: "canaryapp-gateway.team-a", Rule: "no --allowed-gateways entry allows gateway team-a/canaryapp-gateway for namespace default"},
			},
		},
		{
			name: "a host must be allowed on every gateway", policy: p, ns: "team-a",
			gateways:     []string{"istio-system/public-gateway", "istio-system/internal"},
			hosts:        []string{"shop.example.com"},
			wantGateways: []Gateway{public, internal},
			wantRefused: []Refusal{
				{Gateway: "istio-system/internal", Host: "shop.example.com", Rule: "--allowed-gateways allows the app's own Service host only on gateway istio-system/internal for namespace team-a"},
			},
		},
		{
			name: "invalid items", policy: p, ns: "team-a",
			gateways:     []string{"a/b/c", "istio-system/internal"},
			hosts:        []string{"Shop.example.com", "*foo.example.com"},
			wantGateways: []Gateway{internal},
			wantRefused: []Refusal{
				{Gateway: "a/b/c", Rule: "not a gateway reference (namespace/name or name)"},
				{Host: "Shop.example.com", Rule: `not "*", "*.domain" or a lowercase DNS name`},
				{Host: "*foo.example.com", Rule: `not "*", "*.domain" or a lowercase DNS name`},
			},
		},
		{
			name: "a namespace that is no DNS label gets nothing", policy: p, ns: "team-a.example.com",
			gateways: []string{"istio-system/internal"},
			wantRefused: []Refusal{
				{Gateway: "istio-system/internal", Rule: "no --allowed-gateways entry allows gateway istio-system/internal for namespace team-a.example.com"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.policy.Decide(tc.ns, "shop", tc.gateways, tc.hosts)
			if diff := cmp.Diff(tc.wantGateways, d.Gateways); diff != "" {
				t.Errorf("gateways (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantHosts, d.Hosts); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRefused, d.Refused); diff != "" {
				t.Errorf("refused (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefusalString(t *testing.T) {
	for _, tc := range []struct {
		r    Refusal
		want string
	}{
		{Refusal{Gateway: "istio-system/gw", Rule: "no entry"}, `gateway "istio-system/gw": no entry`},
		{Refusal{Gateway: "istio-system/gw", Host: "a.example.com", Rule: "only b"}, `host "a.example.com": only b`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts String writes back in
// a form that parses to the same policy.
func FuzzParse(f *testing.F) {
	for _, s := range []string{examplePolicy, "", "gw@*", "a/b=*@x;;c=d.e@f*g", "mesh@*", "gw=@x", "x/y=*.{namespace}.z@*,a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		p, err := Parse(value)
		if err != nil {
			return
		}
		again, err := Parse(p.String())
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", value, p.String(), err)
		}
		if again.String() != p.String() {
			t.Fatalf("round trip %q -> %q -> %q", value, p.String(), again.String())
		}
	})
}

// FuzzDecide checks Decide's promises for any policy and spec: every
// gateway it allows was asked for and has a rule for the namespace, none is
// the mesh, every host it allows was asked for, is no own host and is
// covered on every allowed gateway, and nothing asked for is both allowed
// and refused.
func FuzzDecide(f *testing.F) {
	f.Add(examplePolicy, "team-a", "istio-system/public-gateway,mesh", "shop.example.com,*.team-a.example.com,*")
	f.Add(examplePolicy, "default", "canaryapp-gateway,public-gateway.istio-system", "*,shop")
	f.Add("gw=*@*", "x", "gw,./gw,x/gw", "*,a.b")
	f.Fuzz(func(t *testing.T, policy, ns, gateways, hosts string) {
		p, err := Parse(policy)
		if err != nil {
			return
		}
		gws, hs := strings.Split(gateways, ","), strings.Split(hosts, ",")
		d := p.Decide(ns, "shop", gws, hs)
		for i, g := range d.Gateways {
			if g.Name == MeshGateway {
				t.Fatalf("allowed gateway %v is the mesh", g)
			}
			if !slices.ContainsFunc(gws, func(ref string) bool { r, ok := ResolveGateway(ref, ns); return ok && r == g }) {
				t.Fatalf("allowed gateway %v was not asked for", g)
			}
			if len(p.rulesFor(g, ns)) == 0 {
				t.Fatalf("allowed gateway %v has no rule for %q", g, ns)
			}
			if slices.Contains(d.Gateways[:i], g) {
				t.Fatalf("gateway %v twice", g)
			}
		}
		if len(d.Gateways) == 0 && len(d.Hosts) > 0 {
			t.Fatalf("hosts %v without a gateway", d.Hosts)
		}
		for _, h := range d.Hosts {
			if !slices.Contains(hs, h) || slices.Contains(OwnHosts(ns, "shop"), h) || !validHost(h) {
				t.Fatalf("allowed host %q: not asked for, own, or invalid", h)
			}
			for _, g := range d.Gateways {
				ok := false
				for _, r := range p.rulesFor(g, ns) {
					for _, pattern := range r.hosts {
						ok = ok || covers(strings.ReplaceAll(pattern, NamespacePlaceholder, ns), h)
					}
				}
				if !ok {
					t.Fatalf("host %q allowed but not covered on gateway %v", h, g)
				}
			}
		}
		for _, r := range d.Refused {
			if r.Host != "" && slices.Contains(d.Hosts, r.Host) {
				t.Fatalf("host %q both allowed and refused", r.Host)
			}
			if r.Host == "" && !slices.Contains(gws, r.Gateway) {
				t.Fatalf("refused gateway %q was not asked for", r.Gateway)
			}
		}
	})
}
