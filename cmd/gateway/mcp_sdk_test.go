package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/auth"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
)

// sdkReport is what testdata/mcp-sdk/client.mjs observed.
type sdkReport struct {
	ConnectError string `json:"connectError"`
	Stderr       string `json:"stderr"`
	Tools        struct {
		Names               []string `json:"names"`
		Required            []string `json:"required"`
		Properties          []string `json:"properties"`
		TimeoutMaximum      float64  `json:"timeoutMaximum"`
		HasOutputSchema     bool     `json:"hasOutputSchema"`
		TopLevelCombinators []string `json:"topLevelCombinators"`
	} `json:"tools"`
	Cases       map[string]sdkCase `json:"cases"`
	LogMessages int                `json:"logMessages"`
	LogSample   map[string]any     `json:"logSample"`
}

type sdkCase struct {
	Thrown     string `json:"thrown"`
	IsError    bool   `json:"isError"`
	Text       string `json:"text"`
	Bytes      int    `json:"bytes"`
	Progress   int    `json:"progress"`
	Structured struct {
		Success     bool   `json:"success"`
		Mode        string `json:"mode"`
		ReturnValue any    `json:"returnValue"`
		Stdout      string `json:"stdout"`
		StdoutBytes int    `json:"stdoutBytes"`
		Lines       int    `json:"lines"`
		Cut         bool   `json:"cut"`
		Truncated   bool   `json:"truncated"`
		Response    *struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		} `json:"response"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Stack   string `json:"stack"`
		} `json:"error"`
		Problem *struct {
			Status int `json:"status"`
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		} `json:"problem"`
	} `json:"structured"`
}

// runSDKClient runs the TypeScript SDK's client with args (make test
// installs it: npm ci in testdata/mcp-sdk).
func runSDKClient(t *testing.T, env []string, args ...string) sdkReport {
	t.Helper()
	dir := filepath.Join("testdata", "mcp-sdk")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		t.Fatalf("the MCP TypeScript SDK is not installed (make test installs it: npm ci in %s): %v", dir, err)
	}
	cmd := exec.Command("node", append([]string{"client.mjs"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	var r sdkReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("client.mjs printed %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	return r
}

// TestMCPWithTheTypeScriptSDK: the official TypeScript SDK, as agents use
// it, against the gateway's MCP server over Streamable HTTP (with an API
// key), over stdio with gateway mcp running the code itself, and over
// stdio with gateway mcp in front of the HTTP gateway. Each answers a
// plain script with its return value, a Worker module, an exception, a
// timeout, a 100,000-line guest in under 64 KiB, and a 422, with results
// that match the tool's outputSchema (the SDK checks) and log messages
// without logging/setLevel; a missing key says an API key is needed.
func TestMCPWithTheTypeScriptSDK(t *testing.T) {
	bin := buildGateway(t)
	key, hash, err := auth.Generate()
	if err != nil {
		t.Fatal(err)
	}
	runtime := []string{"GATEWAY_RUNTIME_WORKERD=" + loadertest.Workerd(t), "GATEWAY_RUNTIME_PROCESSES=1", "GATEWAY_STORAGE_PATH=" + filepath.Join(t.TempDir(), "executions.db")}
	g := startProcess(t, bin, append(runtime, "GATEWAY_AUTH_KEYS=agent="+hash)...)

	t.Run("streamable HTTP", func(t *testing.T) {
		t.Parallel()
		checkSDKReport(t, runSDKClient(t, nil, "http", g.base+"/mcp", key))
	})
	t.Run("stdio, embedded runtime", func(t *testing.T) {
		t.Parallel()
		checkSDKReport(t, runSDKClient(t, append(runtime, "GATEWAY_URL=", "GATEWAY_API_KEY="), "stdio", bin, "mcp"))
	})
	t.Run("stdio, in front of the gateway", func(t *testing.T) {
		t.Parallel()
		checkSDKReport(t, runSDKClient(t, []string{"GATEWAY_URL=" + g.base, "GATEWAY_API_KEY=" + key}, "stdio", bin, "mcp"))
	})
	t.Run("missing key over HTTP", func(t *testing.T) {
		t.Parallel()
		r := runSDKClient(t, nil, "http", g.base+"/mcp")
		if !strings.Contains(r.ConnectError, "API key") || !strings.Contains(r.ConnectError, "401") {
			t.Errorf("connecting without a key: %q, want a 401 that says an API key is needed", r.ConnectError)
		}
	})
	t.Run("wrong key over stdio", func(t *testing.T) {
		t.Parallel()
		r := runSDKClient(t, []string{"GATEWAY_URL=" + g.base, "GATEWAY_API_KEY=dwk_wrong"}, "stdio", bin, "mcp")
		if r.ConnectError == "" || !strings.Contains(r.Stderr, "API key") {
			t.Errorf("gateway mcp with a wrong key: connect error %q, stderr %q; want it refused saying an API key is needed", r.ConnectError, r.Stderr)
		}
	})
}

func checkSDKReport(t *testing.T, r sdkReport) {
	t.Helper()
	if r.ConnectError != "" {
		t.Fatalf("connect: %s\n%s", r.ConnectError, r.Stderr)
	}
	tools := r.Tools
	if !slices.Contains(tools.Names, "execute") || !slices.Equal(tools.Required, []string{"code"}) || !tools.HasOutputSchema ||
		len(tools.TopLevelCombinators) > 0 || !slices.Contains(tools.Properties, "isolate") || tools.TimeoutMaximum <= 0 {
		t.Errorf("tools = %+v, want execute requiring code, with isolate, a timeout maximum and an output schema, no top-level combinator", tools)
	}
	for name, c := range r.Cases {
		if c.Thrown != "" {
			t.Errorf("%s: the SDK threw %q (a result that does not match the output schema throws)", name, c.Thrown)
		}
	}
	c := r.Cases
	for _, name := range []string{"script", "worker", "exception", "huge"} {
		t.Logf("%s: the tool result is %d bytes of JSON", name, c[name].Bytes)
	}
	if s := c["script"].Structured; c["script"].IsError || !s.Success || s.Mode != "script" || !jsonEqual(s.ReturnValue, map[string]any{"answer": 42.0}) ||
		!strings.Contains(c["script"].Text, `{"answer":42}`) {
		t.Errorf("script = %+v, want returnValue {answer: 42} in script mode", c["script"])
	}
	if s := c["await"].Structured; !s.Success || s.Stdout != "hi" || s.ReturnValue != nil {
		t.Errorf("await = %+v, want it to print hi", c["await"])
	}
	if s := c["worker"].Structured; !s.Success || s.Mode != "worker" || s.Response == nil || s.Response.Body != "hello sdk" || s.Stdout != "worker sdk" {
		t.Errorf("worker = %+v, want the Worker's response", c["worker"])
	}
	if s := c["exception"].Structured; !c["exception"].IsError || s.Error == nil || s.Error.Code != "exception" || s.Error.Message != "TypeError: bad input" ||
		!strings.Contains(s.Error.Stack, "main.js:1:") {
		t.Errorf("exception = %+v, want the TypeError with its stack in main.js", c["exception"])
	}
	if s := c["timeout"].Structured; !c["timeout"].IsError || s.Error == nil || s.Error.Code != "timeout" {
		t.Errorf("timeout = %+v, want a timeout", c["timeout"])
	}
	// The server's log budget keeps the first lines (about 10,000 of these);
	// the tool result shows their head and tail and stays small.
	if h := c["huge"]; !h.Structured.Success || h.Structured.Lines < 1000 || !h.Structured.Cut || !h.Structured.Truncated || h.Bytes >= 64<<10 ||
		!strings.Contains(h.Text, "line 0 of") || !strings.Contains(h.Text, fmt.Sprintf("line %d of", h.Structured.Lines-1)) || h.Progress == 0 {
		t.Errorf("huge: %d bytes, lines %d, cut %v, %d progress notifications; want the head and the tail of the lines kept, under 64 KiB", h.Bytes, h.Structured.Lines, h.Structured.Cut, h.Progress)
	}
	if p := c["invalid"].Structured.Problem; !c["invalid"].IsError || p == nil || p.Status != 422 || len(p.Errors) != 2 {
		t.Errorf("invalid = %+v, want the 422 naming code and timeoutMs", c["invalid"])
	}
	if r.LogMessages == 0 || r.LogSample == nil {
		t.Errorf("%d log messages, sample %v: want the guest's lines as log messages without logging/setLevel", r.LogMessages, r.LogSample)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
