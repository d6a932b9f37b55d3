// Package stack drives the local stack that hack/stack/up.sh starts (a kwok
// cluster, Argo CD, Prometheus, a Git server) for `make demo` and the
// end-to-end suite in test/e2e: it reads the stack's env file, commits to the
// demo Git repository as a person would (and refreshes the Argo CD
// Application after each commit, as a Git webhook would), reads what the
// cluster and Argo CD report, and starts and stops the operator and the
// traffic simulator as local processes.
//
// Processes it starts are recorded in $E2E_DIR/pids like the stack's own
// (PID and binary), so hack/stack/down.sh (`make demo-down`) stops them too
// when the program that started them did not get to.
package stack
