// Package kubectlplugin is `kubectl canaryapp`: list and watch CanaryApps
// and steer a release (promote at the approval gate, abort, retry, suspend,
// resume) with the standard kubectl flags. Every action is a plain patch of
// the CanaryApp (a spec field or a one-shot request annotation), so it
// needs nothing but RBAC on canaryapps and works the same as the Argo CD
// actions and Git.
package kubectlplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

// Options are the plugin's inputs. Tests set Client, Namespace, User and
// Now; the binary leaves them empty and the kubeconfig flags decide.
type Options struct {
	Streams genericiooptions.IOStreams
	Flags   *genericclioptions.ConfigFlags

	Client    client.WithWatch
	Namespace string
	User      string
	Now       func() time.Time
}

// NewCommand returns the root command.
func NewCommand(o *Options) *cobra.Command {
	if o.Flags == nil {
		o.Flags = genericclioptions.NewConfigFlags(true)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	root := &cobra.Command{
		Use:           "kubectl-canaryapp",
		Short:         "Watch and steer canaryop releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(o.Streams.Out)
	root.SetErr(o.Streams.ErrOut)
	o.Flags.AddFlags(root.PersistentFlags())
	root.AddCommand(o.listCmd(), o.getCmd(), o.promoteCmd(), o.abortCmd(), o.retryCmd(),
		o.specCmd("suspend", "Freeze the running canary's weight (checks keep running)", true),
		o.specCmd("resume", "Let a suspended canary go on", false))
	return root
}

func (o *Options) client() (client.WithWatch, error) {
	if o.Client != nil {
		return o.Client, nil
	}
	cfg, err := o.Flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	o.Client = c
	return c, nil
}

func (o *Options) namespace() (string, error) {
	if o.Namespace != "" {
		return o.Namespace, nil
	}
	ns, _, err := o.Flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// user is who a request says asked: --as, else the kubeconfig's user.
func (o *Options) user() string {
	if o.User != "" {
		return o.User
	}
	if o.Flags.Impersonate != nil && *o.Flags.Impersonate != "" {
		return *o.Flags.Impersonate
	}
	if raw, err := o.Flags.ToRawKubeConfigLoader().RawConfig(); err == nil {
		if c, ok := raw.Contexts[raw.CurrentContext]; ok && c.AuthInfo != "" {
			return c.AuthInfo
		}
	}
	return "kubectl"
}

func (o *Options) getApp(ctx context.Context, name string) (*v1.CanaryApp, error) {
	c, err := o.client()
	if err != nil {
		return nil, err
	}
	ns, err := o.namespace()
	if err != nil {
		return nil, err
	}
	a := &v1.CanaryApp{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, a); err != nil {
		return nil, explain(err, "get", ns)
	}
	return a, nil
}

// patch sends a merge patch; with rv set it applies only to that version
// of the object, so a decision is never applied to a canary that replaced
// the one the person looked at.
func (o *Options) patch(ctx context.Context, a *v1.CanaryApp, rv string, body map[string]any) error {
	if rv != "" {
		md, _ := body["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			body["metadata"] = md
		}
		md["resourceVersion"] = rv
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if err := o.Client.Patch(ctx, a, client.RawPatch(types.MergePatchType, data)); err != nil {
		return explain(err, "patch", a.Namespace)
	}
	return nil
}

// explain turns API errors a person hits into what to do.
func explain(err error, verb, ns string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to %s canaryapps in namespace %s: ask for a Role with %s on canaryapps.canary.atze.io there "+
			"(examples/limited-user grants canaryapp-editor-role): %w", verb, ns, verb, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("no such CanaryApp in namespace %s: %w", ns, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("the CanaryApp changed meanwhile; look again (kubectl canaryapp get) and retry: %w", err)
	}
	return err
}

var errUsage = errors.New("usage")

func (o *Options) say(format string, args ...any) { fmt.Fprintf(o.Streams.Out, format+"\n", args...) }
