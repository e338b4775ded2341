package execution

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Binary module kinds: what the Worker Loader makes of a module's bytes.
const (
	// ModuleWasm is a WebAssembly module: the guest imports it compiled,
	// as a WebAssembly.Module (Workers refuse to compile raw bytes).
	ModuleWasm = "wasm"
	// ModuleData is bytes the guest imports as an ArrayBuffer.
	ModuleData = "data"
)

// ModuleSource is one member of a request's modules: a module's source
// text (a JSON string), or a binary module, {"wasm": "<base64>"} or
// {"data": "<base64>"} (standard base64, padded).
type ModuleSource struct {
	Text  string
	Kind  string // "" for text, else ModuleWasm or ModuleData
	Bytes []byte // a binary module's
}

// Text is the source text of a module.
func Text(source string) ModuleSource { return ModuleSource{Text: source} }

// Binary is a binary module of kind (ModuleWasm or ModuleData).
func Binary(kind string, data []byte) ModuleSource { return ModuleSource{Kind: kind, Bytes: data} }

// MarshalJSON writes a text module as its string, a binary one as an
// object with one member, its kind, holding the bytes as base64.
func (m ModuleSource) MarshalJSON() ([]byte, error) {
	if m.Kind == "" {
		return json.Marshal(m.Text)
	}
	return json.Marshal(map[string][]byte{m.Kind: m.Bytes})
}

// UnmarshalJSON reads a string, or an object with exactly one member,
// "wasm" or "data", holding base64.
func (m *ModuleSource) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		*m = ModuleSource{}
		return json.Unmarshal(data, &m.Text)
	}
	kind, raw, err := binaryMember(data)
	if err != nil {
		return err
	}
	var b []byte
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '"' { // encoding/json takes an array of numbers too
		return ErrModuleShape
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("%s is not base64: %w", kind, err)
	}
	*m = ModuleSource{Kind: kind, Bytes: b}
	return nil
}

// ErrModuleShape is the error of a module that is neither a string nor a
// binary module's object.
var ErrModuleShape = errors.New(`a module is a source string, {"wasm": "<base64>"} or {"data": "<base64>"}`)

// binaryMember returns the one member of a binary module's object.
func binaryMember(data []byte) (string, json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || len(obj) != 1 {
		return "", nil, ErrModuleShape
	}
	for kind, raw := range obj {
		if kind != ModuleWasm && kind != ModuleData {
			return "", nil, ErrModuleShape
		}
		return kind, raw, nil
	}
	return "", nil, ErrModuleShape
}

// BinaryModule is a binary module as a job carries it to the shim, which
// hands it to the Worker Loader as {wasm: bytes} or {data: bytes}.
type BinaryModule struct {
	Kind  string `json:"kind"`  // ModuleWasm or ModuleData
	Bytes []byte `json:"bytes"` // base64 in JSON
}
