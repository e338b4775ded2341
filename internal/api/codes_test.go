package api_test

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gateway "github.com/dynamic-workers/gateway"
	"github.com/dynamic-workers/gateway/execution"
)

// TestKnownCodesAreTheSpecs checks Code.Known, which gates metric labels
// and the relay's checks, against the ErrorCode enum of openapi.yaml.
func TestKnownCodesAreTheSpecs(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	enum := doc.Components.Schemas["ErrorCode"].Value.Enum
	if len(enum) == 0 {
		t.Fatal("openapi.yaml has no ErrorCode enum")
	}
	for _, v := range enum {
		if s, _ := v.(string); !execution.Code(s).Known() {
			t.Errorf("Code(%q).Known() = false, want true (it is in openapi.yaml)", s)
		}
	}
	for _, s := range []string{"", "success", "Exception", "exception ", " timeout", "timeout\n", "SECRET_x", "runtime-crashed", "exception\x00"} {
		if execution.Code(s).Known() {
			t.Errorf("Code(%q).Known() = true, want false", s)
		}
	}
}

// TestProblemCodesAreTheSpecs checks the problem codes of package execution,
// which the server sends and the client exports, against the Problem code
// enum of openapi.yaml.
func TestProblemCodesAreTheSpecs(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]bool{}
	for _, v := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		s, _ := v.(string)
		spec[s] = true
	}
	codes := execution.ProblemCodes()
	for _, c := range codes {
		if !spec[c] {
			t.Errorf("problem code %q is not in openapi.yaml's Problem code enum", c)
		}
	}
	if len(spec) != len(codes) {
		t.Errorf("openapi.yaml's Problem code enum has %d codes, execution %d", len(spec), len(codes))
	}
}
