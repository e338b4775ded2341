package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestAttackAuditFlood: the result's outbound keeps at most 1000 records
// (caps.json maxOutboundRecords). A guest that first filled them with
// cheap refused requests made its later requests unrecorded, and its
// capability calls too: the audit said nothing of the call that mattered.
// Whatever fills the records (refused fetches, refused capability calls,
// both), a call that reaches the service is in outbound.
func TestAttackAuditFlood(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	for i, flood := range []string{
		`for (let i = 0; i < 1000; i++) { try { await fetch("https://denied-" + i + ".example/"); } catch {} }`,
		`await Promise.allSettled(Array.from({ length: 1200 }, (_, i) => fetch("https://denied-" + i + ".example/")));`,
		`for (let i = 0; i < 1000; i++) { try { await env.reader.fetch("../outside/" + i); } catch {} }`,
		`for (let i = 0; i < 1000; i++) { try { await (i % 2 ? fetch("https://d.example/" + i) : env.reader.fetch("http://elsewhere.example/" + i)); } catch {} }`,
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			path := fmt.Sprintf("after-the-flood-%d", i)
			code := guest(flood + `
  try { await env.reader.fetch("` + path + `"); } catch {}`)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}, "allowOutbound": []string{"allowed.example"}})
			wantSuccess(t, res)
			reached := slices.ContainsFunc(f.service.requests(), func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, path) })
			recorded := slices.ContainsFunc(res.Outbound, func(o execution.Outgoing) bool {
				return o.URL == "/api/"+path && o.Capability == "reader" && o.Status == 200
			})
			if reached && !recorded {
				t.Errorf("the call reached the service but is not among the %d outbound records", len(res.Outbound))
			}
			if len(res.Outbound) > 1000 {
				t.Errorf("%d outbound records, want at most 1000", len(res.Outbound))
			}
		})
	}
}
