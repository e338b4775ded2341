package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAttackOtherKeysRecords: bob, with a valid key of his own, learns
// nothing of alice's executions and changes none of them, whatever he
// tries: her id on every route and with every resume spelling, her list
// cursor, status filters.
func TestAttackOtherKeysRecords(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	id := f.submit(t, f.alice, map[string]any{"code": guest(`console.log("alice's output");`)})
	f.await(t, f.alice, id, "finished")
	f.submit(t, f.alice, map[string]any{"code": guest("")})
	_, page := f.call(t, f.alice, http.MethodGet, "/executions?limit=1", nil)
	var list struct{ Next string }
	if err := json.Unmarshal(page, &list); err != nil || list.Next == "" {
		t.Fatalf("alice's first page = %s, want a next cursor", page)
	}
	for _, tt := range []struct{ method, path, header string }{
		{http.MethodGet, "/executions/" + id, ""},
		{http.MethodDelete, "/executions/" + id, ""},
		{http.MethodGet, "/executions/" + id + "/events", ""},
		{http.MethodGet, "/executions/" + id + "/events?after=0", ""},
		{http.MethodGet, "/executions/" + id + "/events?after=1", ""},
		{http.MethodGet, "/executions/" + id + "/events", "0"},
		{http.MethodGet, "/executions/" + strings.ToUpper(id), ""},
		{http.MethodGet, "/executions/" + id + "%20", ""},
		{http.MethodGet, "/executions/" + url.PathEscape(id+"/../"+id), ""},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, f.url+tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+f.bob)
		req.Header.Set("Accept", "application/x-ndjson")
		if tt.header != "" {
			req.Header.Set("Last-Event-ID", tt.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "alice's output") {
			t.Errorf("bob: %s %s = %d %s, want 404", tt.method, tt.path, resp.StatusCode, body)
		}
	}
	for _, q := range []string{"", "?status=finished", "?status=queued", "?limit=100"} {
		_, data := f.call(t, f.bob, http.MethodGet, "/executions"+q, nil)
		if strings.Contains(string(data), id) || !strings.Contains(string(data), `"executions":[]`) {
			t.Errorf("bob: GET /executions%s = %s, want none of alice's", q, data)
		}
	}
	// Cursors are sealed to their key: alice's is no cursor for bob.
	if resp, data := f.call(t, f.bob, http.MethodGet, "/executions?cursor="+url.QueryEscape(list.Next), nil); resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(string(data), id) {
		t.Errorf("bob: GET /executions with alice's cursor = %d %s, want 422", resp.StatusCode, data)
	}
	if code, rec := f.record(t, f.alice, id); code != http.StatusOK || rec.Status != "finished" {
		t.Errorf("alice's execution after bob's tries: %d %s", code, rec.Status)
	}
}

// TestAttackStoredSecrets: a queued execution's secrets are masked in its
// stored events (in every spelling the guest prints them), and its stored
// request, which holds them, is gone once it has ended, finished or
// cancelled.
func TestAttackStoredSecrets(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	const secret = "s3cr3t-V4lue-Qz"
	code := guest(`console.log(env.TOKEN); console.log(JSON.stringify({ t: env.TOKEN })); console.error(encodeURIComponent(env.TOKEN + "/x"));
  console.log([env.TOKEN]); throw new Error("boom " + env.TOKEN);`)
	done := f.submit(t, f.alice, map[string]any{"code": code, "secrets": map[string]string{"TOKEN": secret}})
	f.await(t, f.alice, done, "finished")
	f.service.hold("stored") // the next one waits in the service until cancelled
	held := f.submit(t, f.alice, map[string]any{"code": guest(`await env.reader.fetch("hold/stored");`), "capabilities": []string{"reader"},
		"secrets": map[string]string{"TOKEN": secret}})
	f.wantArrival(t, "stored")
	if resp, data := f.call(t, f.alice, http.MethodDelete, "/executions/"+held, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE = %d %s, want 202", resp.StatusCode, data)
	}
	f.await(t, f.alice, held, "cancelled")
	for _, id := range []string{done, held} {
		for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
			body := f.openEvents(t, f.alice, id, accept, "")
			data, _ := io.ReadAll(body)
			body.Close()
			if strings.Contains(string(data), secret) || strings.Contains(string(data), url.QueryEscape(secret)) {
				t.Errorf("%s events (%s) show the secret: %s", id, accept, data)
			}
			if id == done && strings.Count(string(data), "[REDACTED]") < 5 {
				t.Errorf("%s events (%s) = %s, want each line's secret masked", id, accept, data)
			}
		}
		e, err := f.store.Get(t.Context(), "alice", id)
		if err != nil || e.Request != nil {
			t.Errorf("%s: stored request = %q (%v), want it deleted", id, e.Request, err)
		}
	}
}
