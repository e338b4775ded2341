package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/api"
)

func TestAcceptNegotiation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accept string
		want   string // Content-Type, or "406"
	}{
		{"", "application/json"},
		{"*/*", "application/json"},
		{"application/json", "application/json"},
		{"application/*", "application/json"},
		{"application/x-ndjson", "application/x-ndjson"},
		{"text/event-stream", "text/event-stream"},
		{"text/*", "text/event-stream"},
		{"application/x-ndjson, application/json;q=0.5", "application/x-ndjson"},
		{"application/json;q=0.1, text/event-stream;q=0.9", "text/event-stream"},
		{"application/json;q=0, */*;q=0.1", "application/x-ndjson"},
		{"text/html, application/xhtml+xml", "406"},
		{"application/json;q=0", "406"},
		{"text/event-stream;q=0, application/*;q=0", "406"},
		{"garbage", "406"},
		{"text/html, */*;q=0.8", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gatewayURL(t)+"/execute",
				strings.NewReader(`{"code": "export default { fetch() { return new Response('ok'); } }"}`))
			req.Header.Set("Content-Type", "application/json")
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if tt.want == "406" {
				var p api.Problem
				_ = json.Unmarshal(data, &p)
				if resp.StatusCode != http.StatusNotAcceptable || p.Code != "not_acceptable" {
					t.Errorf("Accept %q: %d %s, want 406 not_acceptable", tt.accept, resp.StatusCode, data)
				}
				return
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.want {
				t.Errorf("Accept %q: %d %q, want 200 %q", tt.accept, resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
			}
		})
	}
}

func TestStreamingRequestStillValidated(t *testing.T) {
	t.Parallel()
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, gatewayURL(t)+"/execute", strings.NewReader(`{"code": 5}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 422 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("Accept %s, invalid body: %d %q, want a 422 problem", accept, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}
