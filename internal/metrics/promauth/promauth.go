// Package promauth finds the credentials for a Prometheus query in Secrets
// that the platform admin, never a CanaryApp's author, keeps in the
// operator's namespace, labelled canary.atze.io/prometheus-credentials:
// "true". It implements metrics.Credentials.
//
// Each Secret holds:
//
//	url                 required; a Prometheus URL prefix such as
//	                    https://thanos.example.com/tenant-a, under the
//	                    allow-list's rules (metrics.ParsePrefix)
//	namespaces          optional; comma-separated globs (path.Match) of the
//	                    CanaryApp namespaces that may use the Secret, such
//	                    as "team-a,payments-*". Without the key the Secret
//	                    serves every namespace; a blank value serves none
//	bearerToken         optional; sent as "Authorization: Bearer <token>"
//	username, password  optional; basic auth, not together with bearerToken
//	ca.crt              optional; PEM certificate authorities for https
//	insecureSkipVerify  optional; "true" turns certificate checks off
//
// Among the Secrets whose url covers the query's URL (same scheme, host and
// port, path prefix at a segment boundary) and that serve the CanaryApp's
// namespace, the longest url wins; two with the same url: the name that
// sorts first, so the choice never depends on list order. A Secret whose url
// is missing or invalid covers nothing. No Secret: the query carries no
// credentials.
package promauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/atzedevries/canaryop/internal/metrics"
)

// LabelKey marks a Secret as Prometheus credentials; its value must be "true".
const LabelKey = "canary.atze.io/prometheus-credentials"

// Keys of the Secret's data.
const (
	KeyURL                = "url"
	KeyNamespaces         = "namespaces"
	KeyBearerToken        = "bearerToken"
	KeyUsername           = "username"
	KeyPassword           = "password"
	KeyCA                 = "ca.crt"
	KeyInsecureSkipVerify = "insecureSkipVerify"
)

// ErrInvalidCredentials: the Secret chosen for a query is malformed. A
// person must fix it; its errors name the Secret and the key, never a value.
var ErrInvalidCredentials = errors.New("invalid Prometheus credentials")

// Store reads the credential Secrets of one namespace.
type Store struct {
	reader    client.Reader
	namespace string
}

var _ metrics.Credentials = (*Store)(nil)

// New returns a Store reading Secrets in namespace (the operator's own)
// through reader. Every check looks its credentials up, so the reader
// should be a cache restricted to that namespace and label; the operator
// needs no Secret access anywhere else.
func New(reader client.Reader, namespace string) *Store {
	return &Store{reader: reader, namespace: namespace}
}

// Lookup returns the Auth of the Secret chosen for a query from a CanaryApp
// in namespace to rawURL (see the package doc), or nil when none is.
func (s *Store) Lookup(ctx context.Context, namespace, rawURL string) (*metrics.Auth, error) {
	var list corev1.SecretList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{LabelKey: "true"}); err != nil {
		return nil, fmt.Errorf("list Prometheus credential secrets in %s: %w", s.namespace, err)
	}
	best, err := choose(list.Items, namespace, rawURL)
	if err != nil || best == nil {
		return nil, err
	}
	return parse(best)
}

// choose picks the Secret for a query; see the package doc.
func choose(secrets []corev1.Secret, namespace, rawURL string) (*corev1.Secret, error) {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	var best *corev1.Secret
	bestLen := -1
	for i := range secrets {
		sec := &secrets[i]
		prefix, err := metrics.ParsePrefix(string(sec.Data[KeyURL]))
		if err != nil || !prefix.Covers(rawURL) {
			continue
		}
		serves, err := servesNamespace(sec, namespace)
		if err != nil {
			return nil, err
		}
		// Strictly longer: of two equal prefixes the first name stays.
		if serves && len(prefix.String()) > bestLen {
			best, bestLen = sec, len(prefix.String())
		}
	}
	return best, nil
}

// servesNamespace reports whether the Secret's namespaces globs match
// namespace. A malformed glob is an error rather than a miss: otherwise a
// typo would quietly hand the query to a broader Secret.
func servesNamespace(sec *corev1.Secret, namespace string) (bool, error) {
	raw, ok := sec.Data[KeyNamespaces]
	if !ok {
		return true, nil
	}
	serves := false
	for glob := range strings.SplitSeq(string(raw), ",") {
		glob = strings.TrimSpace(glob)
		if glob == "" {
			continue
		}
		matched, err := path.Match(glob, namespace)
		if err != nil {
			return false, invalid(sec, fmt.Sprintf("%s holds a malformed glob: %v", KeyNamespaces, err))
		}
		serves = serves || (matched && namespace != "")
	}
	return serves, nil
}

func parse(sec *corev1.Secret) (*metrics.Auth, error) {
	d := sec.Data
	a := &metrics.Auth{
		Source:      sec.Namespace + "/" + sec.Name,
		Version:     sec.ResourceVersion,
		BearerToken: strings.TrimSpace(string(d[KeyBearerToken])),
		// Trimmed because a value written with echo ends in a newline.
		Username: strings.TrimSpace(string(d[KeyUsername])),
		Password: strings.TrimSpace(string(d[KeyPassword])),
		CA:       d[KeyCA],
	}
	if a.BearerToken != "" && (a.Username != "" || a.Password != "") {
		return nil, invalid(sec, fmt.Sprintf("set either %s or %s and %s, not both", KeyBearerToken, KeyUsername, KeyPassword))
	}
	switch {
	case len(strings.TrimSpace(string(a.CA))) == 0:
		a.CA = nil // the system's roots
	case !x509.NewCertPool().AppendCertsFromPEM(a.CA):
		return nil, invalid(sec, KeyCA+" holds no PEM certificate")
	}
	switch v := strings.TrimSpace(string(d[KeyInsecureSkipVerify])); {
	case strings.EqualFold(v, "true"):
		a.InsecureSkipVerify = true
	case v == "" || strings.EqualFold(v, "false"):
	default:
		return nil, invalid(sec, KeyInsecureSkipVerify+` must be "true" or "false"`)
	}
	return a, nil
}

func invalid(sec *corev1.Secret, why string) error {
	return fmt.Errorf("%w: secret %s/%s: %s", ErrInvalidCredentials, sec.Namespace, sec.Name, why)
}
