package config

import (
	"fmt"
	"strings"
)

// Reference renders every setting as the Markdown of docs/configuration.md,
// so the reference is generated from the definitions and cannot drift.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

Generated from ` + "`internal/config/config.go`" + ` by ` + "`go test ./internal/config -update`" + `; do not edit.

Settings come from their defaults, then an optional file (` + "`--config FILE`" + ` or
` + "`" + EnvPrefix + `_CONFIG` + "`" + `; YAML, JSON or TOML, keys nested by their dots), then
environment variables (an empty one counts as unset: a setting whose empty
value means something, such as storage.path, is emptied in the file), then
flags, each overriding the one before. Durations
are Go durations (` + "`250ms`, `10s`, `1m`" + `). Unknown keys in a file, and any invalid value,
stop the gateway at start with every problem listed.

| setting | environment variable | flag | default | meaning |
|---|---|---|---|---|
`)
	for _, s := range Settings {
		flag := ""
		if s.Flag != "" {
			flag = "`--" + s.Flag + "`"
		}
		def := fmt.Sprint(s.Default)
		if def == "" {
			def = "(empty)"
		}
		env := "`" + s.Env() + "`"
		if s.AltEnv != "" {
			env += ", else `" + s.AltEnv + "`"
		}
		help := s.Help
		if s.Secret {
			help += " Secret: never logged."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", s.Key, env, flag, def, help)
	}
	return b.String()
}
