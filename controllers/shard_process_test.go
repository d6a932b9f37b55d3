package controllers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
	"github.com/atzedevries/canaryop/internal/shard"
	"github.com/atzedevries/canaryop/internal/testenv"
)

// operatorProcess is one canaryop binary running against envtest.
type operatorProcess struct {
	id   string
	cmd  *exec.Cmd
	logs string
	exit chan error
}

// buildOperator builds cmd/ into dir.
func buildOperator(t *testing.T, dir string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "canaryop")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeKubeconfig writes envtest's admin credentials for the processes.
func writeKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	c := env.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	p := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startOperator starts the binary with args; the test's cleanup stops it
// (SIGTERM, then SIGKILL) by its PID and waits for it.
func startOperator(t *testing.T, bin, kubeconfig, dir, id string, args ...string) *operatorProcess {
	t.Helper()
	p := &operatorProcess{id: id, logs: filepath.Join(dir, id+".log"), exit: make(chan error, 1)}
	f, err := os.Create(p.logs)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--git-cache-dir=" + filepath.Join(dir, id+"-git"), "--zap-log-level=2", "--zap-encoder=json", "--zap-time-encoding=rfc3339nano"}, args...)...)
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAME="+id)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit <- p.cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState != nil {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exit:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exit
		}
	})
	return p
}

// kill SIGKILLs the process and waits until it is gone; it returns when
// the signal was sent.
func (p *operatorProcess) kill(t *testing.T) time.Time {
	at := time.Now()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exit
	return at
}

// span is one reconcile of one app by one process, from its logs.
type span struct {
	proc, app  string
	start, end float64
}

// workSpans reads the "Shard work" log lines; a reconcile the process did
// not finish ends at end.
func workSpans(t *testing.T, p *operatorProcess, end float64) []span {
	t.Helper()
	f, err := os.Open(p.logs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open := map[string]float64{}
	var out []span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg, Namespace, Name, ReconcileID string
			TS                                time.Time
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || !strings.HasPrefix(l.Msg, "Shard work") {
			continue
		}
		ts := float64(l.TS.UnixNano()) / 1e9
		key := l.Namespace + "/" + l.Name + "/" + l.ReconcileID
		if l.Msg == "Shard work started" {
			open[key] = ts
			continue
		}
		out = append(out, span{proc: p.id, app: l.Namespace + "/" + l.Name, start: open[key], end: ts})
		delete(open, key)
	}
	for key, start := range open {
		parts := strings.SplitN(key, "/", 3)
		out = append(out, span{proc: p.id, app: parts[0] + "/" + parts[1], start: start, end: end})
	}
	return out
}

func shardHolders(g Gomega, ns string, shards int) map[int]string {
	out := map[int]string{}
	for s := range shards {
		l := &coordinationv1.Lease{}
		if env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("canaryop-shard-%d", s)}, l) == nil && l.Spec.HolderIdentity != nil {
			out[s] = *l.Spec.HolderIdentity
		}
	}
	return out
}

// TestShardedReplicasSurviveASIGKILL runs three operator processes with
// --sharding. Every app's canary starts; one process is SIGKILLed while
// its apps are mid-canary; the others take its shards once its Leases
// expire and bring those canaries to the same end as the rest (promoted,
// written back once each). No app is reconciled by two processes at once,
// as their logs show.
func TestShardedReplicasSurviveASIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the operator binary")
	}
	g := NewWithT(t)
	dir := t.TempDir()
	bin := buildOperator(t, dir)
	kubeconfig := writeKubeconfig(t, dir)
	opNS, ns := env.NewNamespace(t), env.NewNamespace(t)
	repo := newGitRepo(t)
	g.Expect(env.Client.Create(context.Background(), credentialSecret(opNS, repo))).To(Succeed())
	const apps, shards = 9, 8
	names := make([]string, apps)
	for i := range names {
		names[i] = fmt.Sprintf("app-%d", i)
		manifest := strings.ReplaceAll(repo.git("show", "HEAD:apps/canaryapp-sample/canaryapp.yaml"), "canaryapp-sample", names[i])
		_ = os.MkdirAll(filepath.Join(repo.work, "apps", names[i]), 0o755)
		g.Expect(os.WriteFile(filepath.Join(repo.work, "apps", names[i], "canaryapp.yaml"), []byte(manifest), 0o644)).To(Succeed())
	}
	repo.git("add", "-A")
	repo.git("commit", "-q", "-m", "more apps")
	repo.git("push", "-q", "origin", "main")
	prom := newFakeProm(t)
	kubelet(t, ns, nil)

	args := []string{"--sharding", fmt.Sprintf("--shards=%d", shards), "--shard-lease-duration=3s", "--shard-renew-deadline=2s", "--shard-retry-period=250ms",
		"--leader-election-namespace=" + opNS, "--git-credentials-namespace=" + opNS}
	procs := map[string]*operatorProcess{}
	for _, id := range []string{"op-0", "op-1", "op-2"} {
		procs[id] = startOperator(t, bin, kubeconfig, dir, id, args...)
	}
	objs := map[string]*v1.CanaryApp{}
	for _, name := range names {
		app := sample(ns, prom.URL)
		app.Name = name
		app.Spec.Analysis.Interval = &metav1.Duration{Duration: 3 * time.Second}
		app.Spec.GitOps = &v1.GitOpsSpec{RepoURL: repo.url(), Branch: "main", Path: "apps/" + name}
		g.Expect(env.Client.Create(context.Background(), app)).To(Succeed())
		objs[name] = app
	}
	for _, app := range objs {
		g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, 2*time.Minute, poll).Should(haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonStable))
	}
	var holders map[int]string
	g.Eventually(func(g Gomega) int {
		holders = shardHolders(g, opNS, shards)
		distinct := map[string]bool{}
		for _, h := range holders {
			distinct[h] = true
		}
		return len(holders)*10 + len(distinct)
	}, time.Minute, poll).Should(Equal(shards*10+3), "three processes share all shards")
	// The victim is the process whose shards hold the most apps.
	count := map[string][]string{}
	for _, name := range names {
		h := holders[shard.Of(ns, name, shards)]
		count[h] = append(count[h], name)
	}
	victim := ""
	for id, list := range count {
		if victim == "" || len(list) > len(count[victim]) {
			victim = id
		}
	}
	g.Expect(count[victim]).NotTo(BeEmpty())

	for _, app := range objs {
		setImage(g, app, image("v2"))
	}
	for _, name := range count[victim] {
		g.Eventually(func(g Gomega) int32 { return canaryWeight(g, ns, name) }, time.Minute, 50*time.Millisecond).Should(Equal(int32(25)))
	}
	killedAt := procs[victim].kill(t)
	var survivors []*operatorProcess
	for id, p := range procs {
		if id != victim {
			survivors = append(survivors, p)
		}
	}

	// Its shards move to the others; the time it took is reported, not
	// asserted (BENCHMARKS.md).
	g.Eventually(func(g Gomega) []string {
		var left []string
		for s, h := range shardHolders(g, opNS, shards) {
			if h == victim {
				left = append(left, fmt.Sprint(s))
			}
		}
		return left
	}, time.Minute, 50*time.Millisecond).Should(BeEmpty())
	t.Logf("the shards of SIGKILLed %s (%d of its apps mid-canary) moved %.1fs after the kill (lease duration 3s)", victim, len(count[victim]), time.Since(killedAt).Seconds())

	for _, app := range objs {
		g.Eventually(func(g Gomega) *v1.CanaryApp { return get(g, app) }, 2*time.Minute, poll).Should(And(
			WithTransform(func(a *v1.CanaryApp) string { return a.Status.StableImage }, Equal(image("v2"))),
			haveCondition(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonPromoted),
			WithTransform(func(a *v1.CanaryApp) bool {
				wb := a.Status.WriteBack
				return wb != nil && !wb.Pending && wb.Outcome == v1.OutcomePromoted && wb.Commit != ""
			}, BeTrue()),
		), "app %s", app.Name)
	}
	repo.fetch()
	bodies := repo.git("log", "--format=%B", "origin/main")
	for _, name := range names {
		g.Expect(strings.Count(bodies, fmt.Sprintf("Canaryop-App: %s/%s\n", ns, name))).To(Equal(1), "one write-back commit record for %s", name)
		g.Expect(repo.git("show", "origin/main:apps/"+name+"/canaryapp.yaml")).To(ContainSubstring("image: " + image("v2")))
	}

	// No two processes ever reconciled one app at the same time.
	var spans []span
	for _, p := range procs {
		spans = append(spans, workSpans(t, p, float64(killedAt.UnixNano())/1e9)...)
	}
	byApp := map[string][]span{}
	for _, s := range spans {
		byApp[s.app] = append(byApp[s.app], s)
	}
	for _, name := range names {
		list := byApp[ns+"/"+name]
		if len(list) == 0 {
			b, _ := os.ReadFile(procs["op-1"].logs)
			t.Fatalf("no logged work for %s; op-1 logged:\n%s", name, safeTail(string(b), 3000))
		}
		procsSeen := map[string]bool{}
		for i, a := range list {
			procsSeen[a.proc] = true
			for _, b := range list[i+1:] {
				if a.proc != b.proc && b.start < a.end && a.start < b.end {
					t.Fatalf("%s reconciled by %s (%.3f-%.3f) and %s (%.3f-%.3f) at once", name, a.proc, a.start, a.end, b.proc, b.start, b.end)
				}
			}
		}
		if slices.Contains(count[victim], name) {
			// Before all three joined, a replica that started first may
			// have held the shard for a moment: what counts is that the
			// victim worked on it and a survivor took it over after the kill.
			g.Expect(procsSeen).To(HaveKey(victim), "%s: the victim worked on its app", name)
			g.Expect(slices.ContainsFunc(list, func(s span) bool { return s.proc != victim && s.start >= float64(killedAt.UnixNano())/1e9 })).To(
				BeTrue(), "%s: a survivor took the victim's app over after the kill", name)
		}
	}
	for _, p := range survivors {
		g.Expect(p.cmd.ProcessState).To(BeNil(), "%s still runs", p.id)
	}
}

func safeTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
