package executions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
	"github.com/dynamic-workers/gateway/internal/transpile"
	"github.com/dynamic-workers/gateway/worker"
)

// code checks code, language, modules and mainModule.
func (v *validator) code(members map[string]json.RawMessage, job *execution.Job) {
	var language string
	if v.decode("language", members["language"], &language, `"javascript" or "typescript"`) {
		switch language {
		case "javascript", "typescript":
		default:
			v.add("language", fieldInvalid, `language must be "javascript" or "typescript", not %q`, language)
		}
	}
	_, hasCode := members["code"]
	_, hasModules := members["modules"]
	switch {
	case hasCode && hasModules:
		v.add("code", fieldConflict, "give either code or modules, not both")
		return
	case !hasCode && !hasModules:
		v.add("code", fieldRequired, "one of code or modules is required")
		return
	}
	if hasCode {
		var code string
		if v.decode("code", members["code"], &code, "a string") {
			if strings.TrimSpace(code) == "" {
				v.add("code", fieldInvalid, "code must not be empty")
			}
			job.MainModule = "main.js"
			if language == "typescript" {
				job.MainModule = "main.ts"
			}
			job.Modules = map[string]string{job.MainModule: code}
		}
		if _, ok := members["mainModule"]; ok {
			v.add("mainModule", fieldConflict, "mainModule applies only with modules")
		}
		return
	}
	names, sources, ok := v.modules(members["modules"], job)
	if !ok {
		return
	}
	job.Modules = sources
	var main string
	if raw, ok := members["mainModule"]; ok {
		if v.decode("mainModule", raw, &main, "a string") {
			if _, found := sources[main]; !found {
				v.add("mainModule", fieldInvalid, "mainModule %q is not one of the modules", main)
			} else if !isScript(main) {
				v.add("mainModule", fieldInvalid, "mainModule %q must be a .js, .mjs, .ts or .mts module", main)
			}
		}
	} else {
		for _, name := range names {
			if isScript(name) {
				main = name
				break
			}
		}
		if main == "" {
			v.add("modules", fieldInvalid, "modules has no .js, .mjs, .ts or .mts module to run")
		}
	}
	job.MainModule = main
}

func isScript(name string) bool {
	return strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".mjs") || transpile.IsTypeScript(name)
}

// modules decodes the modules object, keeping its members' order: the
// text modules' sources, and the binary modules (job.Binary).
func (v *validator) modules(raw json.RawMessage, job *execution.Job) ([]string, map[string]string, bool) {
	var members map[string]json.RawMessage
	if !v.decode("modules", raw, &members, `an object of module name to source string, {"wasm": base64} or {"data": base64}`) {
		return nil, nil, false
	}
	if len(members) == 0 {
		v.add("modules", fieldRequired, "modules must name at least one module")
		return nil, nil, false
	}
	sources := map[string]string{}
	names := objectKeys(raw)
	for _, name := range names {
		field := "modules." + name
		switch {
		case !moduleNamePattern.MatchString(name) || path.Clean(name) != name || strings.Contains(name, ".."):
			v.add(field, fieldInvalid, "module name %q must be a plain relative path such as lib/util.js", name)
		case reservedName(name):
			v.add(field, fieldInvalid, "module paths with a part starting with %q (in any case) are reserved", worker.Contract.ReservedModulePrefix)
		}
		var m execution.ModuleSource
		if err := json.Unmarshal(members[name], &m); err != nil {
			v.add(field, fieldWrongType, "module %q: %v", name, moduleError(err))
			continue
		}
		if m.Kind != "" {
			v.binaryModule(field, name, m, job)
			continue
		}
		sources[name] = m.Text
		switch path.Ext(name) {
		case ".js", ".mjs", ".txt", ".ts", ".mts":
		case ".json":
			if !json.Valid([]byte(m.Text)) {
				v.add(field, fieldInvalid, "module %q is not valid JSON", name)
			}
		default:
			v.add(field, fieldInvalid, "module %q must end in .js, .mjs, .ts, .mts, .json or .txt (a binary module is {\"wasm\": base64} or {\"data\": base64})", name)
		}
	}
	return names, sources, true
}

// moduleError says what is wrong with a module's JSON without Go's type
// names.
func moduleError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, execution.ErrModuleShape):
		return err
	case errors.As(err, &syntax) || errors.As(err, &typ):
		return execution.ErrModuleShape
	}
	return fmt.Errorf("not valid base64 (standard, padded): %w", execution.ErrModuleShape)
}

// wasmHeader starts every WebAssembly binary: the magic "\0asm" and
// version 1.
var wasmHeader = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// binaryModule checks a binary module and adds it to job.Binary: a wasm
// module is named *.wasm and holds a WebAssembly binary; a data module is
// named with no extension that says another type.
func (v *validator) binaryModule(field, name string, m execution.ModuleSource, job *execution.Job) {
	ext := path.Ext(name)
	switch {
	case m.Kind == execution.ModuleWasm && ext != ".wasm":
		v.add(field, fieldInvalid, "module %q holds WebAssembly: name it *.wasm", name)
	case m.Kind == execution.ModuleWasm && !bytes.HasPrefix(m.Bytes, wasmHeader):
		v.add(field, fieldInvalid, "module %q is not a WebAssembly binary (it must start with \\0asm and version 1)", name)
	case m.Kind == execution.ModuleData && slices.Contains([]string{".js", ".mjs", ".ts", ".mts", ".json", ".txt", ".wasm"}, ext):
		v.add(field, fieldInvalid, "data module %q must not end in %s, which names another kind of module", name, ext)
	default:
		if job.Binary == nil {
			job.Binary = map[string]execution.BinaryModule{}
		}
		job.Binary[name] = execution.BinaryModule{Kind: m.Kind, Bytes: m.Bytes}
	}
}

// objectKeys returns the member names of a JSON object in document order.
func objectKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
	}
	return keys
}

// reservedName reports whether any part of the module path name starts with
// worker.Contract.ReservedModulePrefix in any case, as the shim checks it.
func reservedName(name string) bool {
	prefix := worker.Contract.ReservedModulePrefix
	for part := range strings.SplitSeq(name, "/") {
		if len(part) >= len(prefix) && strings.EqualFold(part[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
