// Command trafficsim is a STAND-IN FOR THE DATA PLANE ONLY. It exists for the
// local demo and the end-to-end suite, where the cluster is kwok (pods run no
// containers) and there is no Istio sidecar or ingress gateway: nothing would
// serve requests and nothing would count them. trafficsim plays the part of
// those missing pieces and nothing else. It never touches the objects the
// operator owns and it is never part of the operator.
//
// What it does, for each app named with --app in --namespace:
//
//   - Every --poll-interval it reads the app's Istio VirtualService (named
//     like the app) and the Deployments "<app>" (subset "primary") and
//     "<app>-canary" (subset "canary") from the API server, to learn the live
//     route weights and the image each subset runs.
//   - An app without a VirtualService is read from its Gateway API HTTPRoute
//     (the gatewayapi router's, named like the app): the weights of the
//     rule without header matches, whose backendRefs "<app>-primary" and
//     "<app>-canary" are served by the Deployments "<app>" and
//     "<app>-canary". Its answers are counted with destination_service_name
//     the backend Service, as a mesh reports them; destination_app stays
//     the app.
//   - Routes with header matches (spec.traffic.canaryMatch, on either
//     router) take the requests that carry the headers before the weights
//     do: --tester-ratio of the requests carry --tester-header.
//   - It makes --rps requests per second, the ones the original demo made
//     with curl: GET /hello, and GET /nothello for a --error-path-ratio share
//     of them. Each request goes to a subset chosen at random with the
//     probabilities given by the weights of the first HTTP route of the
//     VirtualService, as Envoy does.
//   - It answers each request in-process, the way the original
//     atzedevries/go-status-code-server images are used in the demo story
//     (see Respond): no network traffic is sent, the only outbound
//     connections go to the API server.
//   - It counts every answer in istio_requests_total with Istio's standard
//     label names and serves the counter on --listen at /metrics, so that
//     Prometheus scrapes it and the operator's original query
//     increase(istio_requests_total{destination_service_name="canaryapp-sample",response_code=~"5.*"}[20s]) > 2
//     works unchanged.
//
// The response model. In the original images /hello answers 200 and
// /nothello answers 500 in every version; in the demo a person curled
// /nothello only after v3 was deployed, which is what made v3 "bad". A
// simulator sends a steady mix of requests instead, so the model moves the
// difference into the versions: /hello answers 200 in every version, and
// /nothello answers 500 in the versions named by --failing-versions (default
// v3) and 200 in all others. With the defaults (20 requests per second, 20%
// to /nothello) a v3 canary at weight 10 answers about 8 errors in 20s, far
// above the threshold of 2, while a v2 canary answers none. The version is
// the image tag (destination_version), "latest" when the image has none.
//
// Requests are only counted when they reach a pod: when the app has no
// VirtualService yet, when its route names a subset whose Deployment does
// not exist, or when that Deployment has no available replica, the request
// is counted in trafficsim_requests_unrouted_total{app,reason} instead of
// istio_requests_total. A real mesh would answer some of these with a 503
// from the gateway; leaving them out keeps the operator's analysis about
// the app's own answers, which is all the original demo measured.
//
// It runs until SIGINT or SIGTERM, or for --duration when that is set.
//
// Usage:
//
//	trafficsim --kubeconfig /path/to/kubeconfig --namespace default \
//	  --app canaryapp-sample --rps 20 --error-path-ratio 0.2 \
//	  --listen 127.0.0.1:0 --addr-file /tmp/trafficsim.addr
package main
