package main

import (
	"bufio"
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
)

const scriptsUsage = `usage: gateway scripts <command> [args]

Stored scripts of the gateway ($GATEWAY_URL, key $GATEWAY_API_KEY):
  push NAME DIR   store DIR as a new version of NAME: its package.json (whose
                  dependencies the gateway resolves and bundles now) and its
                  .js/.mjs/.ts/.mts/.json/.txt sources, leaving out
                  node_modules, dot files and what DIR's .gitignore names;
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
var scriptExts = map[string]bool{".js": true, ".mjs": true, ".ts": true, ".mts": true, ".json": true, ".txt": true}

// readScriptDir reads DIR as gateway scripts push sends it.
func readScriptDir(dir string) (*client.ScriptSource, error) {
	ignored, err := gitignore(filepath.Join(dir, ".gitignore"))
	if err != nil {
		return nil, err
	}
	src := &client.ScriptSource{Modules: map[string]string{}}
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
		src.Modules[rel] = string(data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var pj struct {
		Main string `json:"main"`
	}
	if data, ok := src.Modules["package.json"]; ok {
		_ = json.Unmarshal([]byte(data), &pj)
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

// gitignore reads the patterns of a .gitignore (none if it is missing):
// the common forms, a name or glob matched against each path part, a
// trailing / for directories only, a leading / anchored at DIR. Negations
// are not followed.
func gitignore(file string) (func(rel string, dir bool) bool, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, bool) bool { return false }, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "!") {
			patterns = append(patterns, line)
		}
	}
	return func(rel string, dir bool) bool {
		for _, p := range patterns {
			dirOnly := strings.HasSuffix(p, "/")
			p = strings.TrimSuffix(p, "/")
			if dirOnly && !dir {
				continue
			}
			if anchored := strings.TrimPrefix(p, "/"); anchored != p || strings.Contains(p, "/") {
				if ok, _ := path.Match(anchored, rel); ok {
					return true
				}
				continue
			}
			if ok, _ := path.Match(p, path.Base(rel)); ok {
				return true
			}
		}
		return false
	}, sc.Err()
}
