package mcp_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/packages"
	"github.com/dynamic-workers/gateway/internal/packages/packagestest"
)

// TestDependenciesProgress: an execute call with dependencies tells its
// client, as progress, that they are being resolved and what they resolved
// to, before the guest's own lines; the result holds only the guest's.
func TestDependenciesProgress(t *testing.T) {
	t.Parallel()
	m, err := packages.New(packages.Options{Registry: packagestest.Upstream(t).URL(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	base := gateway(t, func(g *apitest.Gateway) { g.Packages = m })
	var mu sync.Mutex
	var got []string
	s := connect(t, base, "", &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, strings.Split(req.Params.Message, "\n")...)
	}})
	params := &sdk.CallToolParams{Name: "execute", Arguments: map[string]any{
		"code":         `import { nanoid } from "nanoid"; console.log("length", nanoid().length)`,
		"dependencies": map[string]string{"nanoid": "^5.0.0"},
	}}
	params.SetProgressToken("deps")
	res, err := s.CallTool(t.Context(), params)
	if err != nil || res.IsError {
		t.Fatalf("CallTool = %+v, %v", res, err)
	}
	want := []string{"[install] resolving nanoid@^5.0.0", "[install] dependencies nanoid@5.0.9 (in ", "[stdout] length 21"}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("notifications = %q, want %q…", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("notification %d = %q, want %q…", i, got[i], want[i])
		}
	}
	if stdout, _ := structured(t, res)["stdout"].(string); stdout != "length 21" {
		t.Errorf("result stdout = %q, want only the guest's line", stdout)
	}
}
