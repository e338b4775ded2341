package mcp

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/dynamic-workers/gateway/execution"
)

// A tool result goes into a model's context, so it is bounded whatever
// the guest printed or returned: each part is cut to its share (a long
// output keeps its head and its tail, where an answer or the last error
// usually is), and the structured content is the same lean result the text
// shows, not the record (GET /executions/{id} has that, whole, where
// executions are recorded). With every part at its bound a result is
// about 60 KiB of text before JSON escaping; a guest printing 100,000
// lines gets well under 64 KiB.
const (
	maxOutputBytes  = 6 << 10 // stdout, stderr: each
	maxBodyBytes    = 6 << 10 // the Response body
	maxReturnBytes  = 6 << 10 // returnValue's JSON; past it the value is left out
	maxStackBytes   = 3 << 10 // the error's stack
	maxMessageBytes = 1 << 10 // the error's message
	maxOutbound     = 10      // outbound calls listed
	maxURLBytes     = 256     // of each
	maxHeaders      = 32      // Response headers kept
	maxHeaderBytes  = 256     // of each value
)

// toolResult is the structured content of an execute call: the result,
// each part bounded, or the problem when the request was refused.
type toolResult struct {
	ID      string `json:"id,omitempty" jsonschema:"the execution's id"`
	Success bool   `json:"success" jsonschema:"true when the code ran to its end without an error"`
	Mode    string `json:"mode,omitempty" jsonschema:"how the code ran: script (a plain script, the body of an async function) or worker (an ES module with an export)"`
	// ReturnValue is any JSON value; a pointer, so a returned null is kept.
	ReturnValue *any `json:"returnValue,omitempty" jsonschema:"what the code returned, as JSON (absent when it returned nothing, or a Response, or the value was larger than returnValueBytes says)"`
	// ReturnValueBytes is set when the value was left out for its size.
	ReturnValueBytes int                  `json:"returnValueBytes,omitempty" jsonschema:"the size of a return value too large to include"`
	Stdout           string               `json:"stdout,omitempty" jsonschema:"console.log/info/debug output (head and tail when long)"`
	Stderr           string               `json:"stderr,omitempty" jsonschema:"console.warn/error output (head and tail when long)"`
	StdoutBytes      int                  `json:"stdoutBytes,omitempty" jsonschema:"the size of the whole stdout"`
	StderrBytes      int                  `json:"stderrBytes,omitempty" jsonschema:"the size of the whole stderr"`
	Lines            int                  `json:"lines,omitempty" jsonschema:"console calls kept"`
	Cut              bool                 `json:"cut,omitempty" jsonschema:"true when a part of this result is shorter than the execution's (see the sizes)"`
	Truncated        bool                 `json:"truncated,omitempty" jsonschema:"true when the server's output limits cut the execution's own output"`
	Response         *toolResponse        `json:"response,omitempty" jsonschema:"the Response the code returned"`
	Error            *toolError           `json:"error,omitempty" jsonschema:"why the execution failed"`
	Outbound         []execution.Outgoing `json:"outbound,omitempty" jsonschema:"network and capability calls the guest made (the first ones)"`
	OutboundCount    int                  `json:"outboundCount,omitempty" jsonschema:"all the calls the guest made"`
	DurationMs       float64              `json:"durationMs,omitempty" jsonschema:"how long the execution took"`
	Problem          *execution.Problem   `json:"problem,omitempty" jsonschema:"why the request was refused before anything ran (an RFC 9457 problem; errors names each field at fault)"`
}

type toolResponse struct {
	Status       int               `json:"status" jsonschema:"the HTTP status"`
	Headers      map[string]string `json:"headers,omitempty" jsonschema:"its headers, lower-case names"`
	Body         string            `json:"body" jsonschema:"its body: text, or base64 when bodyEncoding is base64 (the head when long)"`
	BodyEncoding string            `json:"bodyEncoding,omitempty" jsonschema:"utf8 or base64"`
	BodyBytes    int               `json:"bodyBytes" jsonschema:"the size of the whole body as returned (base64 characters when base64)"`
}

type toolError struct {
	Code    execution.Code `json:"code" jsonschema:"exception, syntax_error, invalid_module, timeout, output_limit, memory_limit, runtime_crashed, …"`
	Message string         `json:"message" jsonschema:"the error's message"`
	Stack   string         `json:"stack,omitempty" jsonschema:"its stack, positions in the guest's own files"`
}

// leanResult bounds res for a tool result.
func leanResult(res *execution.Result) *toolResult {
	t := &toolResult{
		ID: res.ID, Success: res.Success, Mode: res.Mode, Truncated: res.Truncated, DurationMs: res.DurationMs,
		StdoutBytes: len(res.Stdout), StderrBytes: len(res.Stderr), Lines: len(res.Logs),
		OutboundCount: len(res.Outbound),
	}
	t.Stdout = headTail(res.Stdout, maxOutputBytes, &t.Cut)
	t.Stderr = headTail(res.Stderr, maxOutputBytes, &t.Cut)
	if len(res.ReturnValue) > maxReturnBytes {
		t.ReturnValueBytes, t.Cut = len(res.ReturnValue), true
	} else if len(res.ReturnValue) > 0 {
		var v any
		if json.Unmarshal(res.ReturnValue, &v) == nil {
			t.ReturnValue = &v
		}
	}
	if r := res.Response; r != nil {
		t.Response = &toolResponse{Status: r.Status, BodyEncoding: r.BodyEncoding, BodyBytes: len(r.Body)}
		t.Response.Body = head(r.Body, maxBodyBytes, &t.Cut)
		names := slices.Sorted(maps.Keys(r.Headers))
		if len(names) > maxHeaders {
			names, t.Cut = names[:maxHeaders], true
		}
		if len(names) > 0 {
			t.Response.Headers = map[string]string{}
		}
		for _, n := range names {
			t.Response.Headers[n] = head(r.Headers[n], maxHeaderBytes, &t.Cut)
		}
	}
	if e := res.Error; e != nil {
		t.Error = &toolError{Code: e.Code, Message: head(e.Message, maxMessageBytes, &t.Cut), Stack: head(e.Stack, maxStackBytes, &t.Cut)}
	}
	for i, o := range res.Outbound {
		if i == maxOutbound {
			t.Cut = true
			break
		}
		o.URL = head(o.URL, maxURLBytes, &t.Cut)
		o.Method = head(o.Method, maxURLBytes, &t.Cut)
		t.Outbound = append(t.Outbound, o)
	}
	return t
}

// head is s cut to at most n bytes at a character boundary; cut is set
// when it was cut.
func head(s string, n int, cut *bool) string {
	if len(s) <= n {
		return s
	}
	*cut = true
	return s[:runeStart(s, n)]
}

// headTail is s, when longer than n bytes, as its head and its tail with
// a line between them saying how much was left out.
func headTail(s string, n int, cut *bool) string {
	if len(s) <= n {
		return s
	}
	*cut = true
	h := runeStart(s, n*3/4)
	t := runeStart(s, len(s)-n/4)
	return s[:h] + "\n[… " + strconv.Itoa(t-h) + " bytes left out …]\n" + s[t:]
}

// runeStart is the start of the character at or before i.
func runeStart(s string, i int) int {
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
