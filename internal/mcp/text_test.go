package mcp

import (
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestSummary: the text of a result says how it ended and shows what an
// agent needs, each part cut to a bound it can read.
func TestSummary(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxOutputBytes) // two bytes a character: the cut must not split one
	tests := []struct {
		name      string
		res       execution.Result
		want, not []string
	}{
		{"success", execution.Result{ID: "ex_1", Success: true, Stdout: "a\nb", DurationMs: 3.25,
			Response: &execution.Response{Status: 201, Headers: map[string]string{"content-type": "text/plain"}, Body: "made"}},
			[]string{"success (, ex_1, 3.2 ms)", "stdout:\na\nb", "response: 201 (text/plain)", "body:\nmade"}, []string{"stderr:", "error:"}},
		{"exception", execution.Result{ID: "ex_2", Stderr: "oops", Error: &execution.Error{Code: execution.CodeException, Message: "Error: no", Stack: "Error: no\n    at fetch (main.js:1:2)"}},
			[]string{"failed: exception (ex_2", "error:\nError: no\n    at fetch (main.js:1:2)", "stderr:\noops"}, []string{"response:"}},
		{"message not in stack", execution.Result{Error: &execution.Error{Code: execution.CodeTimeout, Message: "the execution ran past 100 ms"}},
			[]string{"failed: timeout", "error:\nthe execution ran past 100 ms"}, nil},
		{"binary body", execution.Result{Success: true, Response: &execution.Response{Status: 200, Body: "AAEC", BodyEncoding: execution.EncodingBase64}},
			[]string{"body: binary, 4 base64 characters"}, []string{"AAEC"}},
		{"long stdout", execution.Result{Success: true, Mode: execution.ModeScript, Stdout: long, Truncated: true},
			[]string{"success (script,", "output truncated", "\n[… 6144 bytes left out …]\n"}, []string{long[:maxOutputBytes+2]}},
		{"long body", execution.Result{Success: true, Response: &execution.Response{Status: 200, Body: long}},
			[]string{"[body cut at 6144 of 12288 bytes]"}, []string{long[:maxBodyBytes+2]}},
		{"return value", execution.Result{Success: true, ReturnValue: []byte(`{"n": 42}`)},
			[]string{"returned:\n{\"n\":42}"}, nil},
		{"large return value", execution.Result{Success: true, ReturnValue: []byte(`"` + long + `"`)},
			[]string{"returned: a value of 12290 bytes of JSON, too large to show"}, []string{"éé"}},
		{"denied outbound", execution.Result{Error: &execution.Error{Code: execution.CodeException, Message: "TypeError: fetch failed"},
			Outbound: []execution.Outgoing{{Method: "GET", URL: "https://b.example/", Denied: true}, {Method: "GET", URL: "https://a.example/", Denied: true}, {Method: "GET", URL: "https://b.example/", Denied: true}}},
			[]string{"outbound denied: https://a.example/, https://b.example/ (allowOutbound"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := summary(&tt.res, leanResult(&tt.res))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary() = %q, want it to contain %q", got, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("summary() = %q, want it without %q", got, n)
				}
			}
		})
	}
}

// TestProblemText: a refusal names every field at fault, or when to retry.
func TestProblemText(t *testing.T) {
	t.Parallel()
	p := &execution.Problem{Status: 422, Code: "invalid_request", Detail: "code is required",
		Errors: []execution.FieldProblem{{Field: "code", Code: "required", Detail: "code or modules is required"}}}
	if got, want := problemText(p), "refused (422 invalid_request): code is required\n- code (required): code or modules is required\nFix these fields and call execute again."; got != want {
		t.Errorf("problemText() = %q, want %q", got, want)
	}
	limited := &execution.Problem{Status: 429, Code: "rate_limited", Detail: "quota", RetryAfter: 17}
	if got, want := problemText(limited), "refused (429 rate_limited): quota\nRetry after 17 s."; got != want {
		t.Errorf("problemText(17) = %q, want %q", got, want)
	}
}
