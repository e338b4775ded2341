package execution_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dynamic-workers/gateway/execution"
)

// TestModuleSourceJSON: a module is a string or one binary member of a
// known kind holding base64 (a string: encoding/json would take an array
// of numbers as bytes too), and is written back as it came.
func TestModuleSourceJSON(t *testing.T) {
	t.Parallel()
	good := map[string]execution.ModuleSource{
		`"export default {}"`: execution.Text("export default {}"),
		`{"wasm":"AGFzbQ=="}`: execution.Binary(execution.ModuleWasm, []byte{0, 'a', 's', 'm'}),
		`{"data":""}`:         execution.Binary(execution.ModuleData, []byte{}),
	}
	for in, want := range good {
		var m execution.ModuleSource
		if err := json.Unmarshal([]byte(in), &m); err != nil || m.Kind != want.Kind || m.Text != want.Text || string(m.Bytes) != string(want.Bytes) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", in, m, err, want)
		}
		if out, err := json.Marshal(m); err != nil || string(out) != in {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", m, out, err, in)
		}
	}
	for _, in := range []string{`1`, `null`, `[0, 97]`, `{}`, `{"wasm": [0, 97]}`, `{"wasm": 1}`, `{"Wasm": "AA=="}`, `{"js": "x"}`,
		`{"wasm": "AA==", "data": "AA=="}`, `{"wasm": "***"}`, `{"data": "AA"}`, `{"data": "-_8="}`} {
		var m execution.ModuleSource
		err := json.Unmarshal([]byte(in), &m)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", in, m)
		}
		var typ *json.UnmarshalTypeError
		if err != nil && !errors.Is(err, execution.ErrModuleShape) && !errors.As(err, &typ) && in != `{"wasm": "***"}` && in != `{"data": "AA"}` && in != `{"data": "-_8="}` {
			t.Errorf("Unmarshal(%s) = %v, want ErrModuleShape", in, err)
		}
	}
}
