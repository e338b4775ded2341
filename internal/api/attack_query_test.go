package api_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/executions"
)

// TestAttackMalformedQueries sends every query value of the records API in
// spellings meant to break parsing or reach SQL: resume points (after=,
// Last-Event-ID) that are signed, exponent, hex, padded, past int64 or
// trailed by SQL; cursors that are not base64, base64 of other things, of
// a negative or huge position, or 64 KiB long; limits out of range; status
// filters with SQL; ids with quotes and SQL. Each gets a 4xx naming the
// field (never a 5xx, never another record), and alice's own record is
// still there, whole, afterwards.
func TestAttackMalformedQueries(t *testing.T) {
	g := newHistoryGateway(t, executions.RecordOptions{})
	id := g.submit(t, g.alice, map[string]any{"code": guest(`console.log("mine");`)})
	g.await(t, g.alice, id, "finished")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	var paths []string
	for _, a := range []string{"-1", "1e3", "0x10", " 5", "5 ", "9223372036854775808", "5;DROP TABLE executions", "١", "5' OR '1'='1"} {
		paths = append(paths, "/executions/"+id+"/events?after="+url.QueryEscape(a))
	}
	for _, c := range []string{"!!!", "AAAA", b64("s-1"), b64("s0"), b64("s9223372036854775808"), b64("x5"), b64("s5' OR 1=1 --"),
		"czE=====", strings.Repeat("A", 64<<10), "' OR '1'='1"} {
		paths = append(paths, "/executions?cursor="+url.QueryEscape(c))
	}
	for _, l := range []string{"0", "-1", "101", "1e2", "99999999999999999999", "10; DROP TABLE executions", "0x10"} {
		paths = append(paths, "/executions?limit="+url.QueryEscape(l))
	}
	for _, s := range []string{"FINISHED", "finished ", "queued' OR '1'='1", "finished%00", "*"} {
		paths = append(paths, "/executions?status="+url.QueryEscape(s))
	}
	for _, p := range paths {
		resp, body := g.call(t, g.alice, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("GET %.80s = %d %.200s, want 422", p, resp.StatusCode, body)
		}
	}
	for _, h := range []string{"-1", "1e3", "9223372036854775808", "5' OR '1'='1"} {
		resp, body := g.call(t, g.alice, http.MethodGet, "/executions/"+id+"/events", nil, "Last-Event-ID", h, "Accept", "text/event-stream")
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("events with Last-Event-ID %q = %d %.200s, want 422", h, resp.StatusCode, body)
		}
	}
	for _, other := range []string{id + "' OR '1'='1", "' OR caller <> '", url.PathEscape(id + "'"), strings.Repeat("x", 8<<10), "%25", id + "%00"} {
		for _, suffix := range []string{"", "/events"} {
			resp, body := g.call(t, g.alice, http.MethodGet, "/executions/"+other+suffix, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /executions/%.60s%s = %d %.200s, want 404", other, suffix, resp.StatusCode, body)
			}
		}
	}
	// Past every event: the stream of an ended execution ends, empty.
	resp, body := g.call(t, g.alice, http.MethodGet, "/executions/"+id+"/events?after=9223372036854775807", nil, "Accept", "application/x-ndjson")
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("events after the largest id = %d %q, want 200 and nothing", resp.StatusCode, body)
	}
	rec := g.await(t, g.alice, id, "finished")
	if rec.Result == nil || rec.Result.Stdout != "mine" {
		t.Errorf("alice's record after the attack = %+v, want it whole", rec)
	}
}
