package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dynamic-workers/gateway/client"
	"github.com/dynamic-workers/gateway/execution"
)

const scriptsUsage = `usage: gateway scripts <command> [args]

Stored scripts of the gateway ($GATEWAY_URL, key $GATEWAY_API_KEY):
  push NAME DIR   store DIR as a new version of NAME: its package.json (whose
                  dependencies the gateway resolves and bundles now) and its
                  .js/.mjs/.ts/.mts/.json/.txt sources, leaving out
                  node_modules, dot files and what DIR's .gitignore ignores
                  (by git's rules, ! re-including);
                  the main module is package.json's "main", else index.*
  list            the scripts, each at its latest version
  show NAME       NAME's latest version, and its versions
  rm NAME         delete NAME, every version
Run one with: gateway exec --script NAME[@VERSION]
`

// scriptsCommand runs `gateway scripts`.
func scriptsCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	url, key := getenv("GATEWAY_URL"), getenv("GATEWAY_API_KEY")
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	c := client.New(url, client.WithAPIKey(key))
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	want := func(n int) error {
		if len(args) != n {
			fmt.Fprint(stderr, scriptsUsage)
			return &exitError{code: exitUsage, err: errors.New("wrong arguments")}
		}
		return nil
	}
	if len(args) == 0 {
		return want(1)
	}
	switch args[0] {
	case "push":
		if err := want(3); err != nil {
			return err
		}
		src, err := readScriptDir(args[2])
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		s, created, err := c.PutScript(ctx, args[1], src)
		if err != nil {
			return err
		}
		what := "unchanged: the latest version already"
		if created {
			what = "stored"
		}
		fmt.Fprintf(stdout, "%s@%s %s\n", s.Name, s.Version, what)
		return nil
	case "list":
		if err := want(1); err != nil {
			return err
		}
		l, err := c.ListScripts(ctx)
		if err != nil {
			return err
		}
		for _, s := range l.Scripts {
			fmt.Fprintf(stdout, "%s@%s\t%s\n", s.Name, s.Version, s.CreatedAt.Format("2006-01-02 15:04:05"))
		}
		return nil
	case "show":
		if err := want(2); err != nil {
			return err
		}
		v, err := c.ScriptVersions(ctx, args[1])
		if err != nil {
			return err
		}
		return enc.Encode(v)
	case "rm":
		if err := want(2); err != nil {
			return err
		}
		return c.DeleteScript(ctx, args[1])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, scriptsUsage)
		return nil
	}
	return want(-1)
}

// scriptExts are the module types a script may have.
var scriptExts = map[string]bool{".js": true, ".mjs": true, ".ts": true, ".mts": true, ".json": true, ".txt": true, ".wasm": true}

// readScriptDir reads DIR as gateway scripts push sends it.
func readScriptDir(dir string) (*client.ScriptSource, error) {
	ignored, err := gitignore(filepath.Join(dir, ".gitignore"))
	if err != nil {
		return nil, err
	}
	src := &client.ScriptSource{Modules: map[string]execution.ModuleSource{}}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") || ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || !scriptExts[path.Ext(rel)] {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src.Modules[rel] = execution.Text(string(data))
		if path.Ext(rel) == ".wasm" {
			src.Modules[rel] = execution.Binary(execution.ModuleWasm, data)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var pj struct {
		Main string `json:"main"`
	}
	if m, ok := src.Modules["package.json"]; ok {
		_ = json.Unmarshal([]byte(m.Text), &pj)
	}
	src.MainModule = strings.TrimPrefix(pj.Main, "./")
	for _, candidate := range []string{"index.ts", "index.js", "index.mjs", "src/index.ts", "src/index.js"} {
		if _, ok := src.Modules[candidate]; ok && src.MainModule == "" {
			src.MainModule = candidate
		}
	}
	if _, ok := src.Modules[src.MainModule]; !ok {
		return nil, fmt.Errorf("%s has no main module: set \"main\" in its package.json, or add index.js", dir)
	}
	return src, nil
}
