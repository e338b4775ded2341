package mcp

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestExecuteSchemaNamesRequestFields: every argument of the execute tool
// is a member of an execution request (they go to the service as one).
func TestExecuteSchemaNamesRequestFields(t *testing.T) {
	t.Parallel()
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(executeSchema, &schema); err != nil {
		t.Fatal(err)
	}
	fields := execution.RequestFields()
	for name := range schema.Properties {
		if !slices.Contains(fields, name) {
			t.Errorf("the execute tool's schema has %q, which is no request field (%v)", name, fields)
		}
	}
}
