package mcp_test

import (
	"testing"

	"github.com/dynamic-workers/gateway/internal/api/apitest"
)

// TestServerVersion tells clients the gateway's version at initialize.
func TestServerVersion(t *testing.T) {
	t.Parallel()
	base := gateway(t, func(o *apitest.Gateway) { o.Version = "v1.2.3-test" })
	s := connect(t, base, "", nil)
	info := s.InitializeResult()
	if info == nil || info.ServerInfo == nil || info.ServerInfo.Version != "v1.2.3-test" || info.ServerInfo.Name != "dynamic-workers-gateway" {
		t.Errorf("initialize result %+v, want the gateway's name and version v1.2.3-test", info)
	}
}
