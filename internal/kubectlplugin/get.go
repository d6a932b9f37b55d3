package kubectlplugin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func inNamespace(ns string) client.ListOption { return client.InNamespace(ns) }

func (o *Options) getCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a CanaryApp's release: images, weight, checks, approval and write-back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := Get(o.Streams.Out, a, o.Now()); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			return o.watch(cmd.Context(), a)
		},
	}
	cmd.Flags().BoolVarP(&follow, "watch", "w", false, "print the view again on every change until interrupted")
	return cmd
}

// watch prints the view on every change of a, from its resourceVersion on,
// until ctx ends.
func (o *Options) watch(ctx context.Context, a *v1.CanaryApp) error {
	w, err := o.Client.Watch(ctx, &v1.CanaryAppList{}, client.InNamespace(a.Namespace),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", a.Name)},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: a.ResourceVersion}})
	if err != nil {
		return explain(err, "watch", a.Namespace)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Deleted:
				o.say("%s/%s was deleted", a.Namespace, a.Name)
				return nil
			case watch.Added, watch.Modified:
				if cur, ok := ev.Object.(*v1.CanaryApp); ok {
					fmt.Fprintln(o.Streams.Out, "---")
					_ = Get(o.Streams.Out, cur, o.Now())
				}
			}
		}
	}
}
