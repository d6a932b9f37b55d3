package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a local process started for the demo or a test: its output
// goes to $E2E_LOGS_DIR/<name>.log (appended, so a restart keeps the earlier
// run's lines) and its PID to $E2E_DIR/pids/<name>.pid in hack/stack's
// format, so that hack/stack/down.sh stops it if this program cannot.
type Process struct {
	Name    string
	Log     string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	pidFile string
}

// StartProcess starts bin with args and env added to this process's
// environment. It runs in a session of its own, so a Ctrl-C in the terminal
// reaches only the program that started it, which stops it in order.
func StartProcess(env Env, name, bin string, args, extraEnv []string) (*Process, error) {
	exe, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is it built?)", name, err)
	}
	logPath := filepath.Join(env.LogsDir(), name+".log")
	if err := os.MkdirAll(env.LogsDir(), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "=== %s start %s\n", time.Now().Format(time.RFC3339), name)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	pids := filepath.Join(env.Dir(), "pids")
	if err := os.MkdirAll(pids, 0o755); err == nil {
		p.pidFile = filepath.Join(pids, name+".pid")
		_ = os.WriteFile(p.pidFile, []byte(fmt.Sprintf("%d\n%s\n", cmd.Process.Pid, exe)), 0o644)
	}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to timeout, then SIGKILLs.
func (p *Process) Stop(timeout time.Duration) error {
	defer p.forget()
	if exited, _ := p.Exited(); exited {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed", p.Name, p.PID(), timeout)
	}
}

// Kill sends SIGKILL, as a crash or an OOM kill would, and waits for the end.
func (p *Process) Kill() {
	defer p.forget()
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *Process) forget() {
	if p.pidFile != "" {
		_ = os.Remove(p.pidFile)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Operator is the canaryop manager run as a local process.
type Operator struct {
	*Process
	// MetricsURL and HealthURL are its endpoints on loopback.
	MetricsURL, HealthURL string
}

// StartOperator starts bin/manager against the stack's cluster with Git
// write-back (credentials from OperatorNamespace, Applications from the
// stack's Argo CD namespace, the clone cache under $E2E_DIR/operator so a
// restarted operator finds it again) and waits until it is healthy. It runs
// with the settings of a cluster shared by teams: CanaryApps may query only
// the stack's Prometheus (--prometheus-allowed-urls). Both traffic routers
// run (--traffic-routers), so the story plays on either.
func StartOperator(ctx context.Context, env Env) (*Operator, error) {
	return StartOperatorAs(ctx, env, "operator", nil, nil)
}

// StartOperatorAs is StartOperator for one of several operator processes:
// name names its log ($E2E_LOGS_DIR/<name>.log), its PID file and its clone
// cache ($E2E_DIR/<name>/git-cache, so that no two processes share one);
// args come after StartOperator's flags (a later flag wins), extraEnv is
// added to its environment.
func StartOperatorAs(ctx context.Context, env Env, name string, args, extraEnv []string) (*Operator, error) {
	mport, err := FreePort()
	if err != nil {
		return nil, err
	}
	hport, err := FreePort()
	if err != nil {
		return nil, err
	}
	flags := []string{
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(mport),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(hport),
		"--git-writeback=true",
		"--git-cache-dir=" + filepath.Join(env.Dir(), name, "git-cache"),
		"--git-credentials-namespace=" + OperatorNamespace,
		"--argocd-namespace=" + env.Get("ARGOCD_NS"),
		"--prometheus-allowed-urls=" + env.Get("PROM_URL"),
		// Pull requests live on a local GitHub stand-in: look often.
		"--pull-request-poll-interval=1s",
		"--traffic-routers=istio,gatewayapi",
		"--zap-log-level=info",
	}
	p, err := StartProcess(env, name, filepath.Join(env.Root, "bin", "manager"), append(flags, args...),
		append([]string{"KUBECONFIG=" + env.Get("KUBECONFIG")}, extraEnv...))
	if err != nil {
		return nil, err
	}
	o := &Operator{
		Process:    p,
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport),
		HealthURL:  fmt.Sprintf("http://127.0.0.1:%d/healthz", hport),
	}
	err = Eventually(ctx, 60*time.Second, 200*time.Millisecond, name+" to be healthy", func(ctx context.Context) (bool, string, error) {
		if exited, werr := p.Exited(); exited {
			return false, "", &stopError{fmt.Errorf("%s exited (%v); see %s", name, werr, p.Log)}
		}
		return httpOK(ctx, o.HealthURL)
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return o, nil
}

func httpOK(ctx context.Context, url string) (bool, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "", err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, resp.Status, nil
}

// Trafficsim is the data-plane stand-in (test/trafficsim) run as a local
// process and registered with the stack's Prometheus.
type Trafficsim struct {
	*Process
	Addr        string
	targetsFile string
}

// The per-version profiles of every trafficsim the suite starts
// (test/e2e/metrics_test.go): versions err20 and err20b answer 20% of
// requests with 500, err40 40%, slow takes 800ms and errs like err20.
const (
	TrafficsimErrorRates = "err20=0.2,err20b=0.2,err40=0.4,slow=0.2"
	TrafficsimLatencies  = "slow=800ms"
)

// StartTrafficsim starts bin/trafficsim for apps in namespace ns (v3 answers
// 500 on /nothello), waits for its address and adds it to Prometheus's
// targets (file_sd in $PROM_TARGETS_DIR).
func StartTrafficsim(ctx context.Context, env Env, ns string, apps []string) (*Trafficsim, error) {
	return StartNamedTrafficsim(ctx, env, "trafficsim", ns, apps)
}

// StartNamedTrafficsim is StartTrafficsim for one more namespace (each
// simulator serves one): name names its log, PID, address and Prometheus
// target files, so that it runs next to the others.
func StartNamedTrafficsim(ctx context.Context, env Env, name, ns string, apps []string) (*Trafficsim, error) {
	addrFile := filepath.Join(env.Dir(), name+".addr")
	_ = os.Remove(addrFile)
	args := []string{
		"--kubeconfig=" + env.Get("KUBECONFIG"), "--namespace=" + ns,
		"--app=" + strings.Join(apps, ","),
		"--rps=20", "--error-path-ratio=0.2", "--failing-versions=v3",
		"--version-error-rate=" + TrafficsimErrorRates, "--version-latency=" + TrafficsimLatencies,
		"--listen=127.0.0.1:0", "--addr-file=" + addrFile,
	}
	p, err := StartProcess(env, name, filepath.Join(env.Root, "bin", "trafficsim"), args, nil)
	if err != nil {
		return nil, err
	}
	t := &Trafficsim{Process: p}
	err = Eventually(ctx, 30*time.Second, 100*time.Millisecond, name+"'s address", func(context.Context) (bool, string, error) {
		if exited, werr := p.Exited(); exited {
			return false, "", &stopError{fmt.Errorf("%s exited (%v); see %s", name, werr, p.Log)}
		}
		b, err := os.ReadFile(addrFile)
		if err != nil {
			return false, "", nil
		}
		t.Addr = strings.TrimSpace(string(b))
		return t.Addr != "", t.Addr, nil
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	t.targetsFile = filepath.Join(env.Get("PROM_TARGETS_DIR"), name+".json")
	target := fmt.Sprintf(`[{"targets": [%q], "labels": {"app": %q}}]`+"\n", t.Addr, name)
	if err := os.WriteFile(t.targetsFile+".tmp", []byte(target), 0o644); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	if err := os.Rename(t.targetsFile+".tmp", t.targetsFile); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return t, nil
}

// Stop removes the Prometheus target and stops the process.
func (t *Trafficsim) Stop(timeout time.Duration) error {
	_ = os.Remove(t.targetsFile)
	return t.Process.Stop(timeout)
}

// stopError ends an Eventually at once.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// Stop makes an Eventually condition give up at once with err.
func Stop(err error) error { return &stopError{err} }

// Eventually polls cond every interval until it reports done, for at most
// timeout. cond's errors are passing (kept for the message) unless wrapped
// with Stop. The error on timeout says what was awaited and what cond saw
// last.
func Eventually(parent context.Context, timeout, interval time.Duration, what string, cond func(context.Context) (done bool, detail string, err error)) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var last string
	for {
		done, detail, err := cond(ctx)
		var stop *stopError
		switch {
		case errors.As(err, &stop):
			return fmt.Errorf("waiting for %s: %w", what, stop.err)
		case err != nil:
			last = "error: " + err.Error()
		case done:
			return nil
		default:
			last = detail
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("waiting for %s: %w", what, parent.Err())
			}
			if last == "" {
				last = "nothing observed"
			}
			return fmt.Errorf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		case <-time.After(interval):
		}
	}
}
