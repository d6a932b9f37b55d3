//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atzedevries/canaryop/test/e2e/stack"
)

const (
	ns = "default"
	// Deadlines of the steps: the analysis takes 5s per step, 25s to promote.
	syncTimeout   = 90 * time.Second
	canaryTimeout = 3 * time.Minute
	stopTimeout   = 10 * time.Second
)

// Every app of the suite, each with its own folder and Application, so that
// one scenario's state never leaks into another's.
var apps = append([]string{stack.SampleName, "e2e-midcanary", "e2e-restart", "e2e-prom", "e2e-project", "e2e-gitdown", "e2e-gatewayapi", "e2e-approval", "e2e-metrics"}, shardApps...)

var (
	env  stack.Env
	base *stack.Flow

	// opMu guards op (replaced when a test restarts the operator), sim,
	// teamSims (the simulators of other namespaces a test starts) and
	// extraOps (further operator processes a test starts).
	opMu     sync.Mutex
	op       *stack.Operator
	sim      *stack.Trafficsim
	teamSims = map[*stack.Trafficsim]bool{}
	extraOps = map[*stack.Operator]bool{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	// Interrupted (Ctrl-C, or SIGTERM from hack/e2e.sh): stop what this
	// binary started and end, instead of running on until the suite's timeout.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "e2e: interrupted; stopping the operator and the traffic simulator")
		opMu.Lock()
		defer opMu.Unlock()
		for s := range teamSims {
			_ = s.Stop(stopTimeout)
		}
		for o := range extraOps {
			_ = o.Stop(stopTimeout)
		}
		if sim != nil {
			_ = sim.Stop(stopTimeout)
		}
		if op != nil {
			_ = op.Stop(stopTimeout)
		}
		os.Exit(130)
	}()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "e2e setup: %v\n", err)
		return 1
	}
	var err error
	if env, err = stack.LoadEnv(); err != nil {
		return fail(err)
	}
	if base, err = stack.NewFlow(ctx, env, "e2e", stack.NewTimeline(os.Stdout, "setup")); err != nil {
		return fail(err)
	}
	if err := base.Prepare(ctx); err != nil {
		return fail(err)
	}
	o, err := stack.StartOperator(ctx, env)
	if err != nil {
		return fail(err)
	}
	setOperator(o)
	defer func() { _ = operator().Stop(stopTimeout) }()
	s, err := stack.StartTrafficsim(ctx, env, ns, apps)
	if err != nil {
		return fail(err)
	}
	opMu.Lock()
	sim = s
	opMu.Unlock()
	defer func() { _ = s.Stop(stopTimeout) }()
	return m.Run()
}

func operator() *stack.Operator {
	opMu.Lock()
	defer opMu.Unlock()
	return op
}

func setOperator(o *stack.Operator) {
	opMu.Lock()
	defer opMu.Unlock()
	op = o
}

// start gives a test its Flow (with a timeline labelled by the app), the
// app (folder examples/gitops/<name>, Application <name>, namespace default)
// and a context; the timeline prints the app's changes until the test ends.
func start(t *testing.T, name string) (context.Context, *stack.Flow, stack.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	f := *base
	f.Timeline = stack.NewTimeline(os.Stdout, fmt.Sprintf("[%s]", name))
	app := stack.App{Name: name, Namespace: ns, Dir: filepath.Join("examples/gitops", name), Application: name}
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Timeline.Watch(watchCtx, f.Cluster, f.Repo, app.Namespace, app.Name, app.Application)
	}()
	t.Cleanup(func() {
		stopWatch()
		<-done
		cancel()
	})
	return ctx, &f, app
}

// seedStable commits the app at image and waits until it runs with all
// traffic and Argo CD reports it Synced and Healthy.
func seedStable(ctx context.Context, t *testing.T, f *stack.Flow, app stack.App, image string) {
	t.Helper()
	if _, err := f.Seed(ctx, app, image); err != nil {
		t.Fatal(err)
	}
	waitStable(ctx, t, f, app, image)
}

// seedStableManifest is seedStable with the manifest m (see
// stack.ManifestOn).
func seedStableManifest(ctx context.Context, t *testing.T, f *stack.Flow, app stack.App, m []byte, image string) {
	t.Helper()
	if _, err := f.SeedManifest(ctx, app, m, image); err != nil {
		t.Fatal(err)
	}
	waitStable(ctx, t, f, app, image)
}

func waitStable(ctx context.Context, t *testing.T, f *stack.Flow, app stack.App, image string) {
	t.Helper()
	if _, err := f.WaitCanaryApp(ctx, app, syncTimeout, "stable at "+image, stack.IsStable(image)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitSynced(ctx, app, syncTimeout); err != nil {
		t.Fatal(err)
	}
}

// startTeamTrafficsim starts the data-plane stand-in of namespace ns (the
// suite's own serves only namespace default) until the test ends.
func startTeamTrafficsim(ctx context.Context, t *testing.T, ns string, apps []string) {
	t.Helper()
	s, err := stack.StartNamedTrafficsim(ctx, env, "trafficsim-"+ns, ns, apps)
	if err != nil {
		t.Fatal(err)
	}
	opMu.Lock()
	teamSims[s] = true
	opMu.Unlock()
	t.Cleanup(func() {
		opMu.Lock()
		delete(teamSims, s)
		opMu.Unlock()
		if err := s.Stop(stopTimeout); err != nil {
			t.Error(err)
		}
	})
}

// ctl runs hack/stack/ctl.sh (stop or start one component of the stack).
func ctl(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.Root, "hack/stack/ctl.sh"), args...)
	cmd.Env = append(os.Environ(), "E2E_DIR="+env.Dir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/stack/ctl.sh %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
