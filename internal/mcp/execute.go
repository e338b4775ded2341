//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; clients that send no progress token still get console lines as log messages.

package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/execution"
)

// executeDescription tells a model what the tool does and what a guest
// may do; bounds fills in the service's limits.
func executeDescription(b execution.Bounds) string {
	return fmt.Sprintf(`Run JavaScript or TypeScript in a fresh, isolated V8 sandbox (a Cloudflare Dynamic Worker) and get back what it printed, the value it returned, or the error it threw. Each call gets a new sandbox in milliseconds; nothing carries over between calls.

Plain code runs as it is, as the body of an async function (top-level await and return work):
  const r = await fetch("https://api.example.com/items"); const items = await r.json(); console.log(items.length); return items[0];
An ES module with export default { fetch(request, env, ctx) } runs as a Cloudflare Worker and returns a Response.

The sandbox is the Workers runtime: fetch, Request/Response, URL, crypto, TextEncoder, streams, timers, structuredClone, WebAssembly. It has no file system, no Node.js built-ins, no child processes and no TCP sockets; npm packages come through dependencies ({"zod": "^3"}), resolved and bundled by the gateway. It has no network unless allowOutbound allows it (true: the public internet; a list: those hosts); private and loopback addresses are never reachable. env and secrets become its env (secret values are masked as [REDACTED] in everything returned). Limits: %d ms of wall-clock time by default (timeoutMs, at most %d), %d bytes of console output kept, %d bytes of Response body, %d bytes of code.

console.log/info/debug go to stdout, console.warn/error to stderr; while the code runs its lines are sent as progress notifications (when the call has a progress token) or log messages. The result is bounded for the model's context: long output keeps its head and tail, and structuredContent (id, success, mode, returnValue, stdout, stderr, response, error {code, message, stack}, outbound, durationMs) says what was cut. isError is true when the code failed or the request was refused (then problem.errors names each field at fault). Read resource `+guideURI+` for more.`,
		b.DefaultTimeoutMs, b.MaxTimeoutMs, b.MaxLogBytes, b.MaxResponseBytes, b.MaxCodeBytes)
}

// executeTool is the execute tool's definition.
func executeTool(b execution.Bounds, capabilities bool) (*sdk.Tool, error) {
	in, err := inputSchema(b, capabilities)
	if err != nil {
		return nil, err
	}
	out, err := outputSchema()
	if err != nil {
		return nil, err
	}
	return &sdk.Tool{
		Name:         "execute",
		Title:        "Run code in a sandbox",
		Description:  executeDescription(b),
		InputSchema:  in,
		OutputSchema: out,
		Annotations: &sdk.ToolAnnotations{
			ReadOnlyHint:    false,
			DestructiveHint: new(bool), // a fresh sandbox: nothing outside it changes
			IdempotentHint:  false,
			OpenWorldHint:   new(bool), // closed unless allowOutbound opens it
		},
	}, nil
}

// executeHandler runs a call of the execute tool on the service, in the
// context of the call (it ends when the call is cancelled or its client
// goes away) with the logger of whoever made it. Each execution gets an
// id of its own: one MCP request may carry several calls (a JSON-RPC
// batch), and executions sharing an id would share their records and
// audit.
func executeHandler(opts Options, who identify) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		caller, logger, err := who(req.Extra)
		if err != nil {
			return nil, err
		}
		args := req.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}") // the service then names what is missing
		}
		body, err := execution.DecodeRequest(args)
		if err != nil {
			return refusal(err, "")
		}
		main, problem := mainAsModule(body)
		if problem != nil {
			return refusal(problem, "")
		}
		id := opts.NewID()
		logger = logger.With().Str("execution_id", id).Logger()
		ctx = logger.WithContext(ctx)
		n := newNotifier(sender(ctx, req))
		var logs []execution.Log
		var result *execution.Result
		err = opts.Service.Run(ctx, caller, execution.RunRequest{ID: id, Body: body}, func(ev execution.Event) error {
			switch ev.Type {
			case execution.EventLog:
				logs = append(logs, *ev.Log)
				n.add(*ev.Log)
			case execution.EventInstall:
				// Resolving dependencies can take seconds: the client hears of
				// it as it does of console lines, and the result does not.
				n.add(execution.Log{Stream: "install", Level: "info", Message: ev.Install.String()})
			case execution.EventRestart:
				logs = logs[:0] // the execution runs again
			case execution.EventResult:
				res := *ev.Result
				res.Logs = logs
				result = &res
			}
			return nil
		})
		n.finish()
		if err != nil {
			return refusal(err, main)
		}
		if result == nil {
			return nil, errors.New("the execution ended without a result")
		}
		lean := leanResult(result)
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: summary(result, lean)}},
			StructuredContent: lean,
			IsError:           !result.Success,
		}, nil
	}
}

// mainAsModule turns the tool's arguments into an execution request: with
// modules, code joins them as the main module (main.js, or main.ts with
// language typescript), which it returns. A module of that name is a
// conflict; mainModule is not the tool's.
func mainAsModule(body map[string]json.RawMessage) (string, *execution.Problem) {
	if _, ok := body["mainModule"]; ok {
		return "", execution.InvalidRequest([]execution.FieldProblem{{Field: "mainModule", Code: execution.FieldUnknown,
			Detail: "the execute tool has no mainModule: code is the main module, modules are the modules it imports"}})
	}
	rawModules, ok := body["modules"]
	if !ok {
		return "", nil
	}
	var modules map[string]json.RawMessage
	code, hasCode := body["code"]
	if json.Unmarshal(rawModules, &modules) != nil || !hasCode {
		return "", nil // the service names what is wrong
	}
	main := "main.js"
	var language string
	if raw, ok := body["language"]; ok && json.Unmarshal(raw, &language) == nil && language == "typescript" {
		main = "main.ts"
	}
	if _, taken := modules[main]; taken {
		return "", execution.InvalidRequest([]execution.FieldProblem{{Field: "modules." + main, Code: execution.FieldConflict,
			Detail: main + " is the name of code itself; give the other modules other names"}})
	}
	modules[main] = code
	joined, _ := json.Marshal(modules)
	body["modules"] = joined
	body["mainModule"], _ = json.Marshal(main)
	delete(body, "code")
	delete(body, "language")
	return main, nil
}

// refusal is the tool result for a request the service refused (a
// *execution.Problem): the problem as structured content, and a text that
// names every field at fault, the main module's as code. Any other error
// fails the call.
func refusal(err error, main string) (*sdk.CallToolResult, error) {
	var p *execution.Problem
	if !errors.As(err, &p) {
		return nil, err
	}
	if main != "" {
		q := *p
		q.Errors = slices.Clone(p.Errors)
		for i, e := range q.Errors {
			if e.Field == "modules."+main || e.Field == "mainModule" {
				q.Errors[i].Field = "code"
			}
		}
		p = &q
	}
	return &sdk.CallToolResult{
		Content:           []sdk.Content{&sdk.TextContent{Text: problemText(p)}},
		StructuredContent: &toolResult{Problem: p},
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
