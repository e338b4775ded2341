package executions

import (
	"bytes"
	"encoding/json"
	"path"
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
	names, sources, ok := v.modules(members["modules"])
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

// modules decodes the modules object, keeping its members' order.
func (v *validator) modules(raw json.RawMessage) ([]string, map[string]string, bool) {
	var sources map[string]string
	if !v.decode("modules", raw, &sources, "an object of module name to source string") {
		return nil, nil, false
	}
	if len(sources) == 0 {
		v.add("modules", fieldRequired, "modules must name at least one module")
		return nil, nil, false
	}
	names := objectKeys(raw)
	for _, name := range names {
		field := "modules." + name
		switch {
		case !moduleNamePattern.MatchString(name) || path.Clean(name) != name || strings.Contains(name, ".."):
			v.add(field, fieldInvalid, "module name %q must be a plain relative path such as lib/util.js", name)
		case reservedName(name):
			v.add(field, fieldInvalid, "module paths with a part starting with %q (in any case) are reserved", worker.Contract.ReservedModulePrefix)
		}
		switch path.Ext(name) {
		case ".js", ".mjs", ".txt", ".ts", ".mts":
		case ".json":
			if !json.Valid([]byte(sources[name])) {
				v.add(field, fieldInvalid, "module %q is not valid JSON", name)
			}
		default:
			v.add(field, fieldInvalid, "module %q must end in .js, .mjs, .ts, .mts, .json or .txt", name)
		}
	}
	return names, sources, true
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
