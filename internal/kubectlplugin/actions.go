package kubectlplugin

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/atzedevries/canaryop/api/v1"
)

func (o *Options) listCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List CanaryApps with their phase, images and weight",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			var list v1.CanaryAppList
			if all {
				err = c.List(cmd.Context(), &list)
			} else {
				err = c.List(cmd.Context(), &list, inNamespace(ns))
			}
			if err != nil {
				return explain(err, "list", ns)
			}
			return List(o.Streams.Out, list.Items, all, o.Now())
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the CanaryApps of every namespace")
	return cmd
}

func (o *Options) promoteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "promote NAME",
		Short: "Approve the canary waiting at the approval gate (sets spec.approvedImage)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.Status.Approval == nil {
				if a.Status.CanaryImage == "" {
					return fmt.Errorf("%s runs no canary", args[0])
				}
				return fmt.Errorf("canary %s of %s is not at the approval gate (analysis.approval Manual, after its last step)", a.Status.CanaryImage, args[0])
			}
			image := a.Status.Approval.Image
			if err := o.patch(cmd.Context(), a, a.ResourceVersion, map[string]any{"spec": map[string]any{"approvedImage": image}}); err != nil {
				return err
			}
			o.say("approved %s for %s/%s", image, a.Namespace, a.Name)
			return nil
		},
	}
}

func (o *Options) requestID() string { return fmt.Sprintf("kubectl-%d", o.Now().UnixNano()) }

func (o *Options) request(cmd *cobra.Command, name, key, value string) (*v1.CanaryApp, error) {
	a, err := o.getApp(cmd.Context(), name)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: value, v1.RequestedByAnnotation: o.user()}}}
	return a, o.patch(cmd.Context(), a, "", body)
}

func (o *Options) abortCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "abort NAME",
		Short: "Roll the running canary back now and record its image as failed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.Status.CanaryImage == "" {
				return fmt.Errorf("%s runs no canary", args[0])
			}
			id := o.requestID()
			if _, err := o.request(cmd, args[0], v1.AbortAnnotation, id); err != nil {
				return err
			}
			o.say("abort of %s requested for %s/%s (request %s)", a.Status.CanaryImage, a.Namespace, a.Name, id)
			return nil
		},
	}
}

func (o *Options) retryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retry NAME [IMAGE]",
		Short: "Allow a failed image again (default: spec.image, else the newest failure record)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			image := retryImage(a)
			if len(args) == 2 {
				image = args[1]
			}
			if image == "" || strings.ContainsAny(image, " \t\n") {
				return fmt.Errorf("name the image to retry: %s records no failed image", args[0])
			}
			if !a.IsFailedImage(image) {
				return fmt.Errorf("%s is not recorded as failed for %s", image, args[0])
			}
			id := o.requestID()
			if _, err := o.request(cmd, args[0], v1.RetryAnnotation, id+" "+image); err != nil {
				return err
			}
			o.say("retry of %s requested for %s/%s (request %s)", image, a.Namespace, a.Name, id)
			return nil
		},
	}
}

// retryImage is what the Argo CD retry action picks too: spec.image when
// it is recorded as failed, else the newest record.
func retryImage(a *v1.CanaryApp) string {
	switch {
	case a.IsFailedImage(a.Spec.Image):
		return a.Spec.Image
	case len(a.Status.FailedImages) > 0:
		return a.Status.FailedImages[len(a.Status.FailedImages)-1].Image
	case len(a.Spec.FailedImages) > 0:
		return a.Spec.FailedImages[len(a.Spec.FailedImages)-1].Image
	}
	return ""
}

func (o *Options) specCmd(use, short string, suspend bool) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.getApp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := o.patch(cmd.Context(), a, "", map[string]any{"spec": map[string]any{"suspend": suspend}}); err != nil {
				return err
			}
			o.say("%s/%s: spec.suspend=%t", a.Namespace, a.Name, suspend)
			return nil
		},
	}
}
