// Command kubectl-canaryapp is the kubectl plugin of canaryop: put it on
// the PATH (go install github.com/atzedevries/canaryop/cmd/kubectl-canaryapp@latest,
// or the krew manifest) and run `kubectl canaryapp`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/atzedevries/canaryop/internal/kubectlplugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cmd := kubectlplugin.NewCommand(&kubectlplugin.Options{Streams: genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
