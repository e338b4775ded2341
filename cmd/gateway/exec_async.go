package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

// checkAsync refuses flags that do not go together with --async/--follow.
func (o *execOptions) checkAsync(fs *pflag.FlagSet) error {
	switch {
	case o.async && o.follow != "":
		return errors.New("--async and --follow do not go together: --async queues a FILE, --follow ID prints one's events")
	case o.callback != "" && !o.async:
		return errors.New("--callback-url needs --async")
	case o.follow != "" && fs.NArg() > 0:
		return fmt.Errorf("--follow takes no FILE, got %q", fs.Args())
	}
	return nil
}

// submitCommand queues req and prints its id (with --json, the answer).
func submitCommand(ctx context.Context, c *client.Client, req *execution.Request, opts *execOptions, stdout io.Writer, term terminal) error {
	acc, err := c.Submit(ctx, &execution.Submission{Request: *req, CallbackURL: opts.callback})
	if err != nil {
		return term.refused(err)
	}
	if opts.json {
		return json.NewEncoder(stdout).Encode(acc)
	}
	fmt.Fprintln(stdout, acc.ID)
	return nil
}

// followCommand prints execution opts.follow's events as gateway exec
// prints a stream: logs as they come, then the response's body; its exit
// status is the execution's. With --json it prints the final record.
func followCommand(ctx context.Context, opts *execOptions, term terminal) error {
	c := client.New(opts.url, client.WithAPIKey(opts.key))
	var result *execution.Result
	for ev, err := range c.Follow(ctx, opts.follow, 0) {
		if err != nil {
			return term.refused(err)
		}
		switch ev.Type {
		case execution.EventLog:
			if !opts.json {
				term.log(ev.Log)
			}
		case execution.EventRestart:
			if !opts.json {
				term.restart(ev.Reason)
			}
		case execution.EventResult:
			result = ev.Result
		}
	}
	if opts.json {
		rec, err := c.Get(ctx, opts.follow)
		if err != nil {
			return term.refused(err)
		}
		enc := json.NewEncoder(term.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	if result == nil {
		return term.refused(fmt.Errorf("execution %s was cancelled", opts.follow))
	}
	if !opts.json {
		term.answer(result)
	}
	return term.outcome(result)
}
