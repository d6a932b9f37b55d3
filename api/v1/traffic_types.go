package v1

// TrafficProvider names the traffic router of a CanaryApp
// (spec.traffic.provider).
// +kubebuilder:validation:Enum=istio;gatewayapi
type TrafficProvider string

const (
	// TrafficIstio routes with an Istio VirtualService and DestinationRule
	// (the default).
	TrafficIstio TrafficProvider = "istio"
	// TrafficGatewayAPI routes with a Gateway API HTTPRoute and two
	// backend Services, "<name>-primary" and "<name>-canary".
	TrafficGatewayAPI TrafficProvider = "gatewayapi"
)

// MaxGatewayAPINameLength is the longest CanaryApp name for which the
// "<name>-primary" Service is still a DNS-1035 label of at most 63
// characters.
const MaxGatewayAPINameLength = 55

// TrafficSpec chooses and tunes the traffic router.
//
// +kubebuilder:validation:XValidation:rule="!has(self.gatewayapi) || (has(self.provider) && self.provider == 'gatewayapi')",message="traffic.gatewayapi is read only with traffic.provider gatewayapi"
type TrafficSpec struct {
	// provider is the traffic router: "istio" (the default) writes an
	// Istio VirtualService and DestinationRule; "gatewayapi" writes a
	// Gateway API HTTPRoute with weighted backendRefs to the Services
	// "<name>-primary" and "<name>-canary", for any Gateway API
	// implementation (Istio ambient or sidecars, Envoy Gateway, Cilium,
	// NGINX Gateway Fabric, ...). The operator must have the router enabled
	// (--traffic-routers).
	// +optional
	Provider TrafficProvider `json:"provider,omitempty"`

	// gatewayapi configures the gatewayapi router.
	// +optional
	GatewayAPI *GatewayAPITraffic `json:"gatewayapi,omitempty"`

	// canaryMatch sends requests that match any one entry to the canary at
	// every weight while a canary runs, also at weight 0 before any user
	// reaches it, so that testers can try it. Other requests, and all
	// requests while no canary runs, are split by the weight.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	CanaryMatch []TrafficMatch `json:"canaryMatch,omitempty"`

	// mirrorPercent mirrors that percentage of the app's requests to the
	// canary while a canary runs at weight 0, before it takes real traffic;
	// the canary's answers to mirrored requests are dropped. Unset: no
	// mirroring.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MirrorPercent *int32 `json:"mirrorPercent,omitempty"`
}

// GatewayAPITraffic configures the gatewayapi router.
type GatewayAPITraffic struct {
	// parentRefs are the Gateways (and the app's own Service) the HTTPRoute
	// attaches to. A Gateway must be allowed for the app's namespace by the
	// operator's --allowed-gateways; the app's own Service (kind Service,
	// group "", mesh-internal GAMMA routing) is always routed, listed or not.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ParentRefs []ParentRef `json:"parentRefs,omitempty"`
}

// ParentRef is a Gateway API parentRef of the app's HTTPRoute.
//
// +kubebuilder:validation:XValidation:rule="!has(self.group) || ((has(self.kind) && self.kind == 'Service') ? size(self.group) == 0 : self.group == 'gateway.networking.k8s.io')",message="parentRefs: group must be gateway.networking.k8s.io for a Gateway and empty for a Service"
// +kubebuilder:validation:XValidation:rule="!has(self.kind) || self.kind != 'Service' || (!has(self.sectionName) && !has(self.namespace))",message="parentRefs: a Service parent is the app's own Service: no namespace or sectionName"
type ParentRef struct {
	// group is "gateway.networking.k8s.io" for a Gateway and "" for a
	// Service; unset: the group of kind.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Group *string `json:"group,omitempty"`

	// kind is Gateway (the default) or Service.
	// +optional
	// +kubebuilder:validation:Enum=Gateway;Service
	Kind string `json:"kind,omitempty"`

	// namespace of the Gateway; unset: the app's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`

	// name of the Gateway, or of the app's own Service.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// sectionName is the Gateway listener to attach to; unset: every
	// listener that allows the route.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	SectionName string `json:"sectionName,omitempty"`

	// port is the Gateway listener port to attach to.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
}

// TrafficMatch matches a request when all of its headers and its cookie
// match.
//
// +kubebuilder:validation:XValidation:rule="has(self.headers) || has(self.cookie)",message="a canaryMatch entry needs a header or a cookie"
// +kubebuilder:validation:XValidation:rule="!has(self.headers) || self.headers.all(h, self.headers.exists_one(x, x.name.lowerAscii() == h.name.lowerAscii()))",message="a canaryMatch entry names each header once"
// +kubebuilder:validation:XValidation:rule="!has(self.cookie) || !has(self.headers) || !self.headers.exists(h, h.name.lowerAscii() == 'cookie')",message="a canaryMatch entry with a cookie cannot match the Cookie header too"
type TrafficMatch struct {
	// headers must all match; each name once.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Headers []HeaderMatch `json:"headers,omitempty"`

	// cookie must be in the Cookie header with its value. One per entry:
	// Gateway API and Istio match the Cookie header once; list more
	// entries for alternatives.
	// +optional
	Cookie *CookieMatch `json:"cookie,omitempty"`
}

// HeaderMatchType is how a header value is compared.
// +kubebuilder:validation:Enum=Exact;RegularExpression
type HeaderMatchType string

const (
	// HeaderMatchExact matches the value exactly (the default).
	HeaderMatchExact HeaderMatchType = "Exact"
	// HeaderMatchRegularExpression matches a RE2 regular expression
	// against the whole value.
	HeaderMatchRegularExpression HeaderMatchType = "RegularExpression"
)

// HeaderMatch matches one request header.
type HeaderMatch struct {
	// type is Exact (the default) or RegularExpression (RE2, the whole
	// value).
	// +optional
	Type HeaderMatchType `json:"type,omitempty"`

	// name is the header name, matched case-insensitively.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
	Name string `json:"name"`

	// value is the value, or the regular expression.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// CookieMatch matches one cookie of the Cookie header exactly.
type CookieMatch struct {
	// name is the cookie name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
	Name string `json:"name"`

	// value is the cookie value.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'()*+\-./:<=>?@^_{|}~]+$`
	Value string `json:"value"`
}

// Provider is spec.traffic.provider with its default: TrafficIstio when
// unset.
func (s *CanaryAppSpec) Provider() TrafficProvider {
	if s.Traffic == nil || s.Traffic.Provider == "" {
		return TrafficIstio
	}
	return s.Traffic.Provider
}

// CanaryMatches is spec.traffic.canaryMatch, nil when unset.
func (s *CanaryAppSpec) CanaryMatches() []TrafficMatch {
	if s.Traffic == nil {
		return nil
	}
	return s.Traffic.CanaryMatch
}

// MirrorPercent is spec.traffic.mirrorPercent, 0 when unset.
func (s *CanaryAppSpec) MirrorPercent() int32 {
	if s.Traffic == nil || s.Traffic.MirrorPercent == nil {
		return 0
	}
	return *s.Traffic.MirrorPercent
}
