package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/scopelist"
)

// Labels that make a Secret in the operator's namespace a notification
// provider or a webhook target (value "true"). Keys of its data:
//
//	type        notification providers only: slack, teams or webhook
//	address     required; the http(s) URL to POST to. It is a secret (a
//	            Slack or Teams webhook URL is a credential): it is never
//	            logged, shown in status or events
//	namespaces  required; comma- or newline-separated globs of the
//	            CanaryApp namespaces it serves ("team-a,payments-*", "*"
//	            for all), matched as the Git credentials' namespaces
//	            (internal/scopelist). Missing or empty: it serves none
//	token       optional; sent as "Authorization: Bearer <token>"
//	headers     optional; "Name: value" lines sent with every request
const (
	ProviderLabel = "canary.atze.io/notification-provider"
	WebhookLabel  = "canary.atze.io/webhook"

	KeyType       = "type"
	KeyAddress    = "address"
	KeyNamespaces = "namespaces"
	KeyToken      = "token"
	KeyHeaders    = "headers"
)

// Endpoint is a provider or webhook target an app may use. String never
// prints its address or headers.
type Endpoint struct {
	// Name is the Secret's name, Type its type.
	Name, Type string
	address    string
	header     http.Header
}

// String implements fmt.Stringer without the address or headers.
func (e Endpoint) String() string { return fmt.Sprintf("%s (%s)", e.Name, e.Type) }

// GoString implements fmt.GoStringer the same way.
func (e Endpoint) GoString() string { return e.String() }

// RefusedError says why an app may not use an endpoint, with a condition
// reason. Its text names the Secret and the rule, never a value of it.
type RefusedError struct {
	reason, msg string
}

func (e *RefusedError) Error() string  { return e.msg }
func (e *RefusedError) Reason() string { return e.reason }

// Store reads the endpoints of one kind (one label) in one namespace.
type Store struct {
	reader         client.Reader
	namespace      string
	label, subject string
	// types are the allowed values of the type key; nil: no type key.
	types map[string]bool
}

// NewProviders reads notification providers of the given types in namespace
// (the operator's) through reader, which should be a cache restricted to
// that namespace: the operator needs no Secret access anywhere else.
func NewProviders(reader client.Reader, namespace string, types ...string) *Store {
	s := &Store{reader: reader, namespace: namespace, label: ProviderLabel, subject: "notification provider", types: map[string]bool{}}
	for _, t := range types {
		s.types[t] = true
	}
	return s
}

// NewWebhooks reads webhook targets in namespace through reader.
func NewWebhooks(reader client.Reader, namespace string) *Store {
	return &Store{reader: reader, namespace: namespace, label: WebhookLabel, subject: "webhook target"}
}

// Get returns endpoint name for an app in namespace appNS, or a
// *RefusedError when there is none of that name, it does not serve appNS or
// it is malformed. A Secret without the label reads as absent.
func (s *Store) Get(ctx context.Context, name, appNS string) (Endpoint, error) {
	sec := &corev1.Secret{}
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.namespace, Name: name}, sec)
	if apierrors.IsNotFound(err) || (err == nil && sec.Labels[s.label] != "true") {
		return Endpoint{}, &RefusedError{s.notFound(), fmt.Sprintf("the admin defines no %s %q (a Secret labelled %s=true in the operator's namespace)", s.subject, name, s.label)}
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("reading %s %s: %w", s.subject, name, err)
	}
	if !scopelist.AnyGlob(scopelist.Split(sec.Data[KeyNamespaces]), appNS) {
		return Endpoint{}, &RefusedError{s.notAllowed(), fmt.Sprintf("%s %s does not list namespace %s in %s", s.subject, name, appNS, KeyNamespaces)}
	}
	ep, why := s.parse(sec)
	if why != "" {
		return Endpoint{}, &RefusedError{s.invalid(), fmt.Sprintf("%s %s is invalid: %s", s.subject, name, why)}
	}
	return ep, nil
}

func (s *Store) notFound() string {
	if s.types == nil {
		return v1.ReasonWebhookNotFound
	}
	return v1.ReasonNotificationProviderNotFound
}

func (s *Store) notAllowed() string {
	if s.types == nil {
		return v1.ReasonWebhookNotAllowed
	}
	return v1.ReasonNotificationProviderNotAllowed
}

func (s *Store) invalid() string {
	if s.types == nil {
		return v1.ReasonWebhookInvalid
	}
	return v1.ReasonNotificationProviderInvalid
}

// parse reads the Secret; the reason it is unusable names a key, never a
// value.
func (s *Store) parse(sec *corev1.Secret) (Endpoint, string) {
	d := sec.Data
	ep := Endpoint{Name: sec.Name, Type: "webhook", header: http.Header{}}
	if s.types != nil {
		ep.Type = strings.ToLower(strings.TrimSpace(string(d[KeyType])))
		if !s.types[ep.Type] {
			return Endpoint{}, fmt.Sprintf("%s must be one of %s", KeyType, strings.Join(slices.Sorted(maps.Keys(s.types)), ", "))
		}
	}
	ep.address = strings.TrimSpace(string(d[KeyAddress]))
	u, err := url.Parse(ep.address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return Endpoint{}, fmt.Sprintf("%s must be an http:// or https:// URL with a host and no user info", KeyAddress)
	}
	for _, line := range strings.Split(string(d[KeyHeaders]), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validHeaderName(k) || strings.ContainsAny(v, "\r\n") {
			return Endpoint{}, fmt.Sprintf("%s must be lines of \"Name: value\"", KeyHeaders)
		}
		ep.header.Add(k, v)
	}
	if tok := strings.TrimSpace(string(d[KeyToken])); tok != "" {
		ep.header.Set("Authorization", "Bearer "+tok)
	}
	return ep, ""
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// Check reports whether every provider app names may serve it (see
// Notifier.Check).
func (s *Store) Check(ctx context.Context, app *v1.CanaryApp) error {
	var errs []error
	for _, n := range app.Spec.Notifications {
		if _, err := s.Get(ctx, n.Provider, app.Namespace); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	// The first refusal gives the reason; the message names them all.
	first, _ := errors.AsType[*RefusedError](errs[0])
	if first == nil {
		return errors.Join(errs...)
	}
	return &RefusedError{first.reason, errors.Join(errs...).Error()}
}
