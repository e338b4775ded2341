package executions

import (
	"encoding/base64"
	"maps"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/redact"
)

func TestMaskHeaders(t *testing.T) {
	t.Parallel()
	m := redact.New([]string{"Tok3n", "k\"ey"})
	tests := []struct {
		in, want map[string]string
	}{
		{nil, nil},
		{map[string]string{"a": "b"}, map[string]string{"a": "b"}},
		{map[string]string{"tok3n": "v", "x-tok3n": "Bearer Tok3n"}, map[string]string{"[REDACTED]": "v", "x-[REDACTED]": "Bearer [REDACTED]"}},
		// Names that mask alike merge as a repeated header, in name order.
		{map[string]string{"tok3n": "1", "Tok3n": "2", `k\"ey`: "3"}, map[string]string{"[REDACTED]": "2, 3, 1"}},
	}
	for _, tt := range tests {
		if got := maskHeaders(m, tt.in); !maps.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("maskHeaders(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestMaskResultBodies masks a body whatever its encoding says: the bytes
// of valid base64, and as text anything else a backend let through.
func TestMaskResultBodies(t *testing.T) {
	t.Parallel()
	m := redact.New([]string{"s3cr3t\n"})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ body, encoding, want string }{
		{"a s3cr3t\n b", execution.EncodingUTF8, "a [REDACTED] b"},
		{`"s3cr3t\n"`, execution.EncodingUTF8, `"[REDACTED]"`},
		{b64("\xff s3cr3t\n"), execution.EncodingBase64, b64("\xff [REDACTED]")},
		{"not base64 s3cr3t\n", execution.EncodingBase64, "not base64 [REDACTED]"},
		{"s3cr3t\n", "hex", "[REDACTED]"},
		{"s3cr3t\n", "", "[REDACTED]"},
	}
	for _, tt := range tests {
		res := &execution.Result{Response: &execution.Response{Status: 200, Body: tt.body, BodyEncoding: tt.encoding}}
		maskResult(m, res)
		if res.Response.Body != tt.want {
			t.Errorf("maskResult(body %q, %q) = %q, want %q", tt.body, tt.encoding, res.Response.Body, tt.want)
		}
	}
}
