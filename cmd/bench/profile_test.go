package main

import (
	"testing"

	pprofile "github.com/google/pprof/profile"
)

// TestPartOf: a sample belongs to the innermost named part of its stack
// (the leaf is first), inlined frames innermost first.
func TestPartOf(t *testing.T) {
	loc := func(names ...string) *pprofile.Location {
		l := &pprofile.Location{}
		for _, n := range names {
			l.Line = append(l.Line, pprofile.Line{Function: &pprofile.Function{Name: n}})
		}
		return l
	}
	index := func(name string) int {
		for i, p := range parts {
			if p.name == name {
				return i
			}
		}
		t.Fatalf("no part %q", name)
		return -1
	}
	for _, tt := range []struct {
		name  string
		stack []*pprofile.Location
		want  int
	}{
		{"validation inside the handler", []*pprofile.Location{
			loc("encoding/json.(*decodeState).object"),
			loc("github.com/dynamic-workers/gateway/internal/executions.validateExecute"),
			loc("github.com/dynamic-workers/gateway/internal/executions.(*Service).Run"),
			loc("github.com/go-chi/chi/v5.(*Mux).ServeHTTP"),
			loc("net/http.(*conn).serve"),
		}, index("decode and validate the request")},
		{"an inlined store call under the writer", []*pprofile.Location{
			loc("syscall.Syscall6"),
			loc("github.com/dynamic-workers/gateway/internal/store.(*sqlStore).execKept", "github.com/dynamic-workers/gateway/internal/store.(*sqlStore).insertRecord"),
			loc("github.com/dynamic-workers/gateway/internal/executions.(*writer).run"),
		}, index("record: the SQLite writer (and the store's other work)")},
		{"the server reading a request", []*pprofile.Location{
			loc("net/http.(*conn).readRequest"),
			loc("net/http.(*conn).serve"),
		}, index("HTTP server (net/http: read request, write response)")},
		{"nothing named", []*pprofile.Location{loc("runtime.memmove")}, len(parts)},
	} {
		if got := partOf(&pprofile.Sample{Location: tt.stack}); got != tt.want {
			t.Errorf("partOf(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}
