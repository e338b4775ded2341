package execution_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
)

// TestRequestFieldsAreTheSpecs: the members of an execution request, as
// Request defines them, are exactly openapi.yaml's ExecuteFields.
func TestRequestFieldsAreTheSpecs(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	spec := slices.Sorted(maps.Keys(doc.Components.Schemas["ExecuteFields"].Value.Properties))
	fields := slices.Sorted(slices.Values(execution.RequestFields()))
	if !slices.Equal(spec, fields) {
		t.Errorf("openapi.yaml's ExecuteFields = %v, Request's fields = %v", spec, fields)
	}
}
