//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; clients that send no progress token still get console lines as log messages.

package mcp

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"strconv"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/execution"
)

// executeSchema is the execute tool's input schema: the fields of a POST
// /execute request an agent needs. The arguments go to the execution service as
// they are, which validates them and names the field of every problem.
//
//go:embed execute.schema.json
var executeSchema json.RawMessage

// executeDescription tells a model what the tool does and what a guest is.
const executeDescription = `Run JavaScript or TypeScript in a fresh, isolated V8 sandbox (a Cloudflare Dynamic Worker) and get back its console output, the Response it returned, or the error it threw.

The code is one ES module whose default export has a fetch handler returning a Response, e.g.:

export default {
  async fetch(request, env) { console.log("hi", env.NAME); return new Response("done"); }
}

console.log/info/debug go to stdout, console.warn/error to stderr; while the guest runs its lines are also sent as progress notifications (when the call has a progress token) or log messages, several lines to a notification and at most 10 notifications a second; the result has every line. The guest has no network unless allowOutbound allows it; env and secrets are its env (secret values are masked as [REDACTED] in everything returned). For several files use modules (name → source) and mainModule instead of code; imports between them are relative ("./util.js"). Read resource ` + guideURI + ` for the full format.

The result: structuredContent is the execution result (success, stdout, stderr, logs, response {status, headers, body}, error {code, message, stack}, durationMs); isError is true when success is false or the request was refused (then the text names each field at fault).`

// executeTool is the execute tool's definition.
func executeTool() *sdk.Tool {
	return &sdk.Tool{
		Name:        "execute",
		Title:       "Run code in a sandbox",
		Description: executeDescription,
		InputSchema: executeSchema,
		Annotations: &sdk.ToolAnnotations{
			ReadOnlyHint:    false,
			DestructiveHint: new(bool), // a fresh sandbox: nothing outside it changes
			IdempotentHint:  false,
			OpenWorldHint:   new(bool), // closed unless allowOutbound opens it
		},
	}
}

// executeHandler runs a call of the execute tool on the service, in the
// context of the call (it ends when the call is cancelled or its client
// goes away) with the logger of the HTTP request that carried it. Each
// execution gets an id of its own: one MCP request may carry several calls
// (a JSON-RPC batch), and executions sharing an id would share their
// records and audit.
func executeHandler(opts Options) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		r := httpRequest(req.Extra)
		if r == nil {
			return nil, errors.New("execute is served over HTTP only")
		}
		args := req.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}") // the service then names what is missing
		}
		body, err := execution.DecodeRequest(args)
		if err != nil {
			return refusal(err)
		}
		id := opts.NewID()
		logger := zerolog.Ctx(r.Context()).With().Str("execution_id", id).Logger()
		ctx = logger.WithContext(ctx)
		n := newNotifier(sender(ctx, req))
		var logs []execution.Log
		var result *execution.Result
		err = opts.Service.Run(ctx, opts.Caller(r), execution.RunRequest{ID: id, Body: body}, func(ev execution.Event) error {
			switch ev.Type {
			case execution.EventLog:
				logs = append(logs, *ev.Log)
				n.add(*ev.Log)
			case execution.EventRestart:
				logs = logs[:0] // the execution runs again
			case execution.EventResult:
				res := *ev.Result
				res.Logs = append([]execution.Log{}, logs...)
				result = &res
			}
			return nil
		})
		n.finish()
		if err != nil {
			return refusal(err)
		}
		if result == nil {
			return nil, errors.New("the execution ended without a result")
		}
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: summary(result)}},
			StructuredContent: result,
			IsError:           !result.Success,
		}, nil
	}
}

// refusal is the tool result for a request the service refused (a
// *execution.Problem): the problem as structured content, and a text that
// names every field at fault. Any other error fails the call.
func refusal(err error) (*sdk.CallToolResult, error) {
	var p *execution.Problem
	if !errors.As(err, &p) {
		return nil, err
	}
	return &sdk.CallToolResult{
		Content:           []sdk.Content{&sdk.TextContent{Text: problemText(p)}},
		StructuredContent: p,
		IsError:           true,
	}, nil
}

// logLevel maps a console method to an MCP log level.
func logLevel(console string) sdk.LoggingLevel {
	switch console {
	case "debug":
		return "debug"
	case "warn":
		return "warning"
	case "error":
		return "error"
	}
	return "info"
}

// problemText says why the request was refused and what to do about it.
func problemText(p *execution.Problem) string {
	s := "refused (" + strconv.Itoa(p.Status) + " " + p.Code + "): " + p.Detail
	for _, e := range p.Errors {
		s += "\n- " + e.Field + " (" + e.Code + "): " + e.Detail
	}
	switch {
	case len(p.Errors) > 0:
		s += "\nFix these fields and call execute again."
	case p.RetryAfter > 0:
		s += "\nRetry after " + strconv.Itoa(p.RetryAfter) + " s."
	}
	return s
}
