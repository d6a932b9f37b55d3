// Package routepolicy decides which Istio gateways and hosts a CanaryApp's
// VirtualService may carry. It is pure: no client, no cluster.
//
// The operator writes VirtualServices with its own cluster-wide rights, while
// a CanaryApp author may be allowed nothing but CanaryApps in one namespace.
// Copying spec.gateways and spec.hosts as given would let that author publish
// routes for other teams' hosts or bind shared ingress gateways. So, by
// default, a CanaryApp named N in namespace NS gets only:
//
//   - its own Service host: N, N.NS.svc or N.NS.svc.cluster.local (all one
//     Service; the VirtualService names it N);
//   - the implicit "mesh" gateway, for that host only.
//
// Everything else needs an admin rule (see Parse). The same rules decide the
// Gateway parentRefs of the gatewayapi router (package
// traffic/gatewayapi): an entry for namespace/name allows the Gateway API
// Gateway of that namespace and name, and its hosts as the HTTPRoute's
// hostnames; the app's own Service as a (GAMMA) parent needs no entry, any
// other Service is never allowed. A host other than the own
// Service is never bound to the mesh: on the mesh a VirtualService host
// applies to every sidecar, so "payments.team-b.svc.cluster.local" would take
// over team B's service for the whole mesh, and Istio rejects "*" on the mesh
// outright. Extra hosts are therefore only routed through a gateway the admin
// allows, and only when the admin allows the host on that gateway.
package routepolicy

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// MeshGateway is Istio's reserved name for all sidecars of the mesh.
const MeshGateway = "mesh"

// NamespacePlaceholder in a host pattern stands for the app's namespace.
const NamespacePlaceholder = "{namespace}"

// Policy is the admin's allow-list of gateways and of the hosts routed
// through them. The zero value (and a nil *Policy) allows no gateway and no
// extra host: only the app's own Service host on the mesh.
//
// Policy implements flag.Value, so that one flag fills it:
//
//	var routes routepolicy.Policy
//	flag.Var(&routes, "allowed-gateways", routepolicy.FlagUsage)
//
// Giving the flag twice adds the second value's entries to the first's.
type Policy struct {
	rules []rule
}

// rule is one entry of the flag value.
type rule struct {
	// gwNamespace is "" for a gateway in the app's own namespace.
	gwNamespace, gwName string
	// hosts are host patterns, possibly with NamespacePlaceholder.
	hosts []string
	// namespaces are globs of the app namespaces the rule is for.
	namespaces []string
}

// FlagUsage describes the flag value in one line, for flag.Var.
const FlagUsage = `Istio gateways and hosts CanaryApps may route, as ";"-separated entries GATEWAY[=HOST,...]@NAMESPACE-GLOB,...; ` +
	`GATEWAY is [namespace/]name (no namespace: the app's own), HOST may be "*", "*.domain" or a name and may contain {namespace}. ` +
	`Example: "istio-system/public-gateway=*.{namespace}.example.com@team-*;canaryapp-gateway=*@default". ` +
	`Without it a VirtualService holds the app's own Service host on the mesh only.`

// Parse parses the value of the --allowed-gateways flag: entries separated
// by ";", each
//
//	GATEWAY [ "=" HOST { "," HOST } ] "@" NAMESPACE { "," NAMESPACE }
//
// where
//
//   - GATEWAY is "namespace/name" for a Gateway in a fixed namespace, or
//     "name" for the Gateway of that name in the app's own namespace. It
//     cannot be "mesh": the mesh always carries the own Service host and
//     never anything else.
//   - HOST is a host the app may route through that gateway besides its own
//     Service host (which every allowed gateway may carry): "*", a wildcard
//     "*.domain" (covering every name below domain, and "*.sub.domain"
//     hosts), or an exact name. "{namespace}" stands for the app's
//     namespace. No "=HOST..." part: the gateway may carry the own Service
//     host only.
//   - NAMESPACE is a glob of the app namespaces the entry is for; "*"
//     matches any run of characters, so "team-*" matches "team-a", and "*"
//     alone matches every namespace. The list is required, so that a
//     forgotten "@" never means "every namespace".
//
// Spaces around entries and items are ignored; empty entries are skipped.
// The characters ";", "=", "@", "," and "/" cannot occur in gateway names,
// hosts or namespaces, so every value has one reading. Entries add up: a
// host is allowed on a gateway for a namespace when any entry for that
// gateway and namespace allows it. The error of a bad value names the entry.
//
// Examples:
//
//	istio-system/public-gateway=*.{namespace}.example.com,shop.example.com@team-a,team-b
//	    apps in team-a may route *.team-a.example.com (and names below it) and
//	    shop.example.com through istio-system/public-gateway; team-b alike.
//	canaryapp-gateway=*@default
//	    apps in default may route any host through default/canaryapp-gateway
//	    (the original demo's examples/istio/gateway.yaml).
//	istio-system/internal-gateway@*
//	    every app may route its own Service host through that gateway.
func Parse(value string) (*Policy, error) {
	p := &Policy{}
	if err := p.Set(value); err != nil {
		return nil, err
	}
	return p, nil
}

// Set implements flag.Value: it adds the entries of value (see Parse). On an
// error p is unchanged.
func (p *Policy) Set(value string) error {
	var rules []rule
	for entry := range strings.SplitSeq(value, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		r, err := parseRule(entry)
		if err != nil {
			return fmt.Errorf("entry %q: %w", entry, err)
		}
		rules = append(rules, r)
	}
	p.rules = append(p.rules, rules...)
	return nil
}

// String implements flag.Value: the entries in Parse's syntax, in a form
// Parse reads back to the same policy.
func (p *Policy) String() string {
	if p == nil {
		return ""
	}
	entries := make([]string, 0, len(p.rules))
	for _, r := range p.rules {
		var b strings.Builder
		if r.gwNamespace != "" {
			b.WriteString(r.gwNamespace + "/")
		}
		b.WriteString(r.gwName)
		if len(r.hosts) > 0 {
			b.WriteString("=" + strings.Join(r.hosts, ","))
		}
		b.WriteString("@" + strings.Join(r.namespaces, ","))
		entries = append(entries, b.String())
	}
	return strings.Join(entries, ";")
}

func parseRule(entry string) (rule, error) {
	var r rule
	left, namespaces, ok := strings.Cut(entry, "@")
	if !ok {
		return r, fmt.Errorf(`no "@namespaces": say which app namespaces may use the gateway ("@*" for all)`)
	}
	if strings.Contains(namespaces, "@") {
		return r, fmt.Errorf(`more than one "@"`)
	}
	gateway, hosts, hasHosts := strings.Cut(left, "=")
	if strings.Contains(hosts, "=") {
		return r, fmt.Errorf(`more than one "="`)
	}

	gateway = strings.TrimSpace(gateway)
	if ns, name, qualified := strings.Cut(gateway, "/"); qualified {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return r, fmt.Errorf("gateway namespace %q: %s", ns, strings.Join(msgs, "; "))
		}
		r.gwNamespace, gateway = ns, name
	}
	if msgs := validation.IsDNS1123Subdomain(gateway); len(msgs) > 0 {
		return r, fmt.Errorf("gateway name %q: %s", gateway, strings.Join(msgs, "; "))
	}
	if gateway == MeshGateway {
		return r, fmt.Errorf(`the "mesh" gateway needs no entry and can get no hosts: it carries each app's own Service host only`)
	}
	r.gwName = gateway

	if hasHosts {
		for h := range strings.SplitSeq(hosts, ",") {
			h = strings.TrimSpace(h)
			if err := validPattern(h); err != nil {
				return r, err
			}
			if !slices.Contains(r.hosts, h) {
				r.hosts = append(r.hosts, h)
			}
		}
	}

	for g := range strings.SplitSeq(namespaces, ",") {
		g = strings.TrimSpace(g)
		if err := validGlob(g); err != nil {
			return r, err
		}
		if !slices.Contains(r.namespaces, g) {
			r.namespaces = append(r.namespaces, g)
		}
	}
	return r, nil
}

// validPattern checks a host pattern with the placeholder standing for a
// namespace: every namespace is a DNS label, so a pattern valid for one is
// valid for all.
func validPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty host")
	}
	if !validHost(strings.ReplaceAll(p, NamespacePlaceholder, "ns")) {
		return fmt.Errorf(`host %q: not "*", "*.domain" or a lowercase DNS name (%s may stand for the namespace)`, p, NamespacePlaceholder)
	}
	return nil
}

func validGlob(g string) error {
	if g == "" {
		return fmt.Errorf("empty namespace glob")
	}
	if len(g) > validation.DNS1123LabelMaxLength {
		return fmt.Errorf("namespace glob %q is longer than a namespace name", g)
	}
	for _, c := range g {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '*' {
			return fmt.Errorf(`namespace glob %q: only a-z, 0-9, "-" and "*" may occur`, g)
		}
	}
	return nil
}

// validHost reports whether h is a host Istio accepts in a VirtualService
// and this package can compare: "*", "*.subdomain" or a subdomain, all
// lowercase. Istio also accepts partial wildcards such as "*foo.com"; they
// are refused here so that matching stays a plain suffix comparison.
func validHost(h string) bool {
	if h == "*" {
		return true
	}
	if strings.HasPrefix(h, "*.") {
		return len(validation.IsWildcardDNS1123Subdomain(h)) == 0
	}
	return len(validation.IsDNS1123Subdomain(h)) == 0
}

// covers reports whether every name matched by host is matched by pattern:
// "*" covers all, "*.d" covers the names below d (including "*.x.d" and
// "*.d" itself), and an exact pattern only itself. Both must be valid.
func covers(pattern, host string) bool {
	if pattern == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return host == pattern
}

// globMatch matches s against a glob in which "*" stands for any run of
// characters and everything else for itself.
func globMatch(glob, s string) bool {
	parts := strings.Split(glob, "*")
	if len(parts) == 1 {
		return glob == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// Gateway is a resolved gateway reference.
type Gateway struct {
	Namespace, Name string
}

// String is the reference in the "namespace/name" form Istio reads the same
// way from any VirtualService.
func (g Gateway) String() string { return g.Namespace + "/" + g.Name }

// ResolveGateway reads a spec.gateways item the way Istio does for a
// VirtualService in namespace ns: "namespace/name" (with "." for ns), a
// plain "name" in ns, and the legacy "name.namespace[.svc.cluster.local]"
// form. Reading it like Istio matters: "public-gateway.istio-system" is not
// a gateway of ns but istio-system/public-gateway. ok is false for "mesh"
// and for anything that names no valid gateway.
func ResolveGateway(ref, ns string) (g Gateway, ok bool) {
	switch {
	case ref == MeshGateway:
		return g, false
	case strings.Contains(ref, "/"):
		g.Namespace, g.Name, _ = strings.Cut(ref, "/")
		if g.Namespace == "." {
			g.Namespace = ns
		}
	case strings.Contains(ref, "."):
		name, rest, _ := strings.Cut(ref, ".")
		g.Name = name
		g.Namespace, _, _ = strings.Cut(rest, ".")
	default:
		g.Namespace, g.Name = ns, ref
	}
	if len(validation.IsDNS1123Label(g.Namespace)) > 0 || len(validation.IsDNS1123Subdomain(g.Name)) > 0 {
		return Gateway{}, false
	}
	return g, true
}

// Decision is what a CanaryApp's VirtualServices may hold.
type Decision struct {
	// Gateways are the allowed gateways of spec.gateways, resolved, in
	// spec order without duplicates and without "mesh" (the mesh is always
	// routed, for the own Service host only).
	Gateways []Gateway
	// Hosts are the allowed hosts of spec.hosts other than the own Service,
	// in spec order without duplicates. Each is allowed on every gateway in
	// Gateways, because a VirtualService binds all its hosts to all its
	// gateways; Hosts is empty when Gateways is.
	Hosts []string
	// Refused lists what spec.gateways and spec.hosts asked for and the
	// policy left out.
	Refused []Refusal
}

// Refusal is one gateway or host the policy left out.
type Refusal struct {
	// Gateway is the refused spec.gateways item, or for a refused host the
	// gateway it is not allowed on ("" when no gateway is allowed at all).
	Gateway string
	// Host is the refused spec.hosts item; "" when a gateway is refused.
	Host string
	// Rule says which rule refused it.
	Rule string
}

func (r Refusal) String() string {
	if r.Host == "" {
		return fmt.Sprintf("gateway %q: %s", r.Gateway, r.Rule)
	}
	return fmt.Sprintf("host %q: %s", r.Host, r.Rule)
}

// OwnHosts are the names of the app's Service (named service, in namespace
// ns) that its VirtualServices may always carry.
func OwnHosts(ns, service string) []string {
	return []string{service, service + "." + ns + ".svc", service + "." + ns + ".svc.cluster.local"}
}

// Decide decides what the VirtualServices of an app in namespace ns whose
// Service is named service may carry of the spec's gateways and hosts. The
// own Service's names in hosts are always allowed and are not repeated in
// Decision.Hosts; "mesh" in gateways is always allowed and not repeated in
// Decision.Gateways. Empty items name nothing and are skipped (the CRD
// rejects them anyway).
func (p *Policy) Decide(ns, service string, gateways, hosts []string) Decision {
	var d Decision
	validApp := len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Label(service)) == 0
	// rules[i] are the rules that allow d.Gateways[i] for ns.
	var rules [][]rule
	for _, ref := range gateways {
		if ref == MeshGateway || ref == "" {
			continue
		}
		g, ok := ResolveGateway(ref, ns)
		if !ok {
			d.Refused = append(d.Refused, Refusal{Gateway: ref, Rule: "not a gateway reference (namespace/name or name)"})
			continue
		}
		if slices.Contains(d.Gateways, g) {
			continue
		}
		var rs []rule
		if validApp {
			rs = p.rulesFor(g, ns)
		}
		if len(rs) == 0 {
			d.Refused = append(d.Refused, Refusal{Gateway: ref, Rule: fmt.Sprintf("no --allowed-gateways entry allows gateway %s for namespace %s", g, ns)})
			continue
		}
		d.Gateways = append(d.Gateways, g)
		rules = append(rules, rs)
	}

	own := OwnHosts(ns, service)
	for _, h := range hosts {
		if h == "" || slices.Contains(own, h) || slices.Contains(d.Hosts, h) {
			continue
		}
		if !validHost(h) {
			d.Refused = append(d.Refused, Refusal{Host: h, Rule: `not "*", "*.domain" or a lowercase DNS name`})
			continue
		}
		if len(d.Gateways) == 0 {
			d.Refused = append(d.Refused, Refusal{Host: h, Rule: "hosts other than the app's own Service are never routed on the mesh, only through an allowed gateway, and spec.gateways names none"})
			continue
		}
		if r, refused := refuseHost(h, ns, d.Gateways, rules); refused {
			d.Refused = append(d.Refused, r)
			continue
		}
		d.Hosts = append(d.Hosts, h)
	}
	return d
}

// refuseHost returns the refusal of host on the first of gateways that does
// not allow it: all hosts of a VirtualService are bound to all its gateways.
func refuseHost(host, ns string, gateways []Gateway, rules [][]rule) (Refusal, bool) {
	for i, g := range gateways {
		var allowed []string
		for _, r := range rules[i] {
			for _, pattern := range r.hosts {
				pattern = strings.ReplaceAll(pattern, NamespacePlaceholder, ns)
				if !slices.Contains(allowed, pattern) {
					allowed = append(allowed, pattern)
				}
			}
		}
		if slices.ContainsFunc(allowed, func(pattern string) bool { return covers(pattern, host) }) {
			continue
		}
		what := "the app's own Service host only"
		if len(allowed) > 0 {
			what = "only " + strings.Join(allowed, ", ") + " besides the app's own Service host"
		}
		// Only the patterns for ns are named: the message lands in the
		// tenant's status and must not tell other tenants' hosts.
		return Refusal{Gateway: g.String(), Host: host, Rule: fmt.Sprintf("--allowed-gateways allows %s on gateway %s for namespace %s", what, g, ns)}, true
	}
	return Refusal{}, false
}

// rulesFor returns the rules naming gateway g for apps in namespace ns.
func (p *Policy) rulesFor(g Gateway, ns string) []rule {
	if p == nil {
		return nil
	}
	var out []rule
	for _, r := range p.rules {
		gwNS := r.gwNamespace
		if gwNS == "" {
			gwNS = ns
		}
		if gwNS != g.Namespace || r.gwName != g.Name {
			continue
		}
		if slices.ContainsFunc(r.namespaces, func(glob string) bool { return globMatch(glob, ns) }) {
			out = append(out, r)
		}
	}
	return out
}
