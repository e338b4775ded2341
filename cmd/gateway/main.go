// Command gateway is the Dynamic Workers gateway: an HTTP service that runs
// untrusted Worker code in fresh V8 isolates through Cloudflare's Worker Loader.
//
//	gateway serve [flags]    run the HTTP server (see --help)
//	gateway exec [FILE|-]    run Worker code through a gateway (see exec --help)
//	gateway mcp              MCP over stdio (see mcp --help)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dynamic-workers/gateway/internal/transpile"
)

// version is the gateway's version, set at build time with
// -ldflags "-X main.version=..." (make build uses git describe).
var version = "dev"

func main() {
	transpile.MaybeServeChild() // in the TypeScript compiler's child process, serves it and exits
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	var exit *exitError
	if errors.As(err, &exit) {
		os.Exit(exit.code) // its message is printed already
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
