// Command go-sdk shows the gateway's Go client: it runs a Worker for its
// result, streams another's console output as it happens, and shows how a
// refused request reads.
//
//	GATEWAY_URL=http://127.0.0.1:8080 go run ./examples/go-sdk
//
// GATEWAY_API_KEY is sent as the bearer token when set.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-sdk:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	url := getenv("GATEWAY_URL")
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	c := client.New(url,
		client.WithAPIKey(getenv("GATEWAY_API_KEY")),
		client.WithRetries(2), // only when the gateway says a retry is safe
	)
	if err := execute(ctx, c, stdout); err != nil {
		return err
	}
	if err := stream(ctx, c, stdout); err != nil {
		return err
	}
	return refused(ctx, c, stdout)
}

// execute runs a Worker and prints its result once it has ended.
func execute(ctx context.Context, c *client.Client, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.Execute(ctx, &execution.Request{
		Code: `export default {
  async fetch(request, env) {
    console.log("region:", env.REGION, "token:", env.TOKEN);
    return Response.json({ sum: env.NUMBERS.reduce((a, b) => a + b, 0) });
  }
}`,
		Env:       map[string]any{"REGION": "eu", "NUMBERS": []int{1, 2, 3}},
		Secrets:   map[string]string{"TOKEN": "tok_0123456789"}, // masked as [REDACTED] in the output
		TimeoutMs: 5000,
	})
	if err != nil {
		return err // refused by the gateway, unreachable, or ctx ended
	}
	fmt.Fprintln(stdout, "== execute")
	if !res.Success {
		// The guest ran and failed: not a Go error.
		fmt.Fprintf(stdout, "guest failed: %s: %s\n", res.Error.Code, res.Error.Message)
		return nil
	}
	fmt.Fprintf(stdout, "id %s, %.1f ms\nstdout: %s\nresponse %d: %s\n",
		res.ID, res.DurationMs, res.Stdout, res.Response.Status, res.Response.Body)
	return nil
}

// stream prints each console line of a Worker the moment it is printed.
func stream(ctx context.Context, c *client.Client, stdout io.Writer) error {
	s, err := c.Stream(ctx, &execution.Request{
		Code: `export default {
  async fetch() {
    for (let i = 1; i <= 3; i++) {
      console.log("tick", i);
      await new Promise(r => setTimeout(r, 300));
    }
    console.error("that was the last one");
    return new Response("done");
  }
}`,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "== stream")
	start := time.Now()
	for ev, err := range s.Events() { // closes the stream when the loop ends
		if err != nil {
			return err
		}
		switch ev.Type {
		case execution.EventStart:
			fmt.Fprintln(stdout, "started", ev.ID)
		case execution.EventLog:
			fmt.Fprintf(stdout, "%6s [%s] %s\n", time.Since(start).Round(time.Millisecond), ev.Log.Stream, ev.Log.Message)
		case execution.EventResult:
			fmt.Fprintf(stdout, "success %v, body %q\n", ev.Result.Success, ev.Result.Response.Body)
		}
	}
	return nil
}

// refused sends an invalid request and prints the gateway's problem.
func refused(ctx context.Context, c *client.Client, stdout io.Writer) error {
	_, err := c.Execute(ctx, &execution.Request{
		Code:              "export default {}",
		TimeoutMs:         -1,
		CompatibilityDate: "someday",
	})
	var gwErr *client.Error
	if !errors.As(err, &gwErr) {
		return fmt.Errorf("want the gateway to refuse an invalid request, got %v", err)
	}
	fmt.Fprintln(stdout, "== refused")
	fmt.Fprintf(stdout, "%d %s: %s\n", gwErr.StatusCode, gwErr.Code, gwErr.Detail)
	for _, fe := range gwErr.Errors {
		fmt.Fprintf(stdout, "  %s: %s (%s)\n", fe.Field, fe.Detail, fe.Code)
	}
	return nil
}
