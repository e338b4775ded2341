//lint:file-ignore SA1019 MCP logging is deprecated as of protocol 2026-07-28 but works for at least twelve months; clients that send no progress token still get console lines as log messages (issue 18 asks for both).

package mcp

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"strconv"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// executeSchema is the execute tool's input schema: the fields of a POST
// /execute request an agent needs. The arguments go to /execute as they
// are, which validates them and names the field of every problem.
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

// executeHandler runs a call of the execute tool through run.
func executeHandler(run Runner) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		r := httpRequest(req.Extra)
		if r == nil {
			return nil, errors.New("execute is served over HTTP only")
		}
		args := req.Params.Arguments
		if len(args) == 0 {
			args = json.RawMessage("{}") // /execute then names what is missing
		}
		n := newNotifier(sender(ctx, req))
		out, err := run(ctx, r, args, n.add)
		n.finish()
		if err != nil {
			return nil, err
		}
		if out.Result == nil {
			return refused(out), nil
		}
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: summary(out.Result)}},
			StructuredContent: out.Result,
			IsError:           !out.Result.Success,
		}, nil
	}
}

// refused is the tool result for a request /execute refused: the problem as
// structured content, and a text that names every field at fault.
func refused(out Outcome) *sdk.CallToolResult {
	var p problem
	if err := json.Unmarshal(out.Problem, &p); err != nil || p.Code == "" {
		p = problem{Status: out.Status, Code: "internal", Detail: "the gateway refused the request"}
	}
	return &sdk.CallToolResult{
		Content:           []sdk.Content{&sdk.TextContent{Text: p.text(out.RetryAfter)}},
		StructuredContent: out.Problem,
		IsError:           true,
	}
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

// problem is the part of an RFC 9457 problem of the API the text shows.
type problem struct {
	Status int            `json:"status"`
	Code   string         `json:"code"`
	Detail string         `json:"detail"`
	Errors []fieldProblem `json:"errors"`
}

// fieldProblem is one problem of a field in a refused request.
type fieldProblem struct {
	Field  string `json:"field"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// text says why the request was refused and what to do about it.
func (p problem) text(retryAfter string) string {
	s := "refused (" + strconv.Itoa(p.Status) + " " + p.Code + "): " + p.Detail
	for _, e := range p.Errors {
		s += "\n- " + e.Field + " (" + e.Code + "): " + e.Detail
	}
	switch {
	case len(p.Errors) > 0:
		s += "\nFix these fields and call execute again."
	case retryAfter != "":
		s += "\nRetry after " + retryAfter + " s."
	}
	return s
}
