// Command build bundles the playground's script with esbuild's Go API: the
// page's logic and the CodeMirror packages from node_modules (which `npm ci`
// installs exactly as package-lock.json pins them) into one minified file.
// The output depends only on those inputs and esbuild's version in go.mod,
// so rebuilding from a clean checkout gives the committed file byte for byte.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/dynamic-workers/gateway/internal/playground"
)

func main() {
	src := flag.String("src", "src/main.js", "entry point")
	out := flag.String("out", "assets/app.js", "bundle to write")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "playground build:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	dir := filepath.Dir(filepath.Dir(src))
	sum, err := playground.SourceHash(os.DirFS(dir))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "codemirror")); err != nil {
		return fmt.Errorf("node_modules is missing: run `npm ci` in %s (or `make playground`): %w", dir, err)
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{src},
		Bundle:            true,
		Format:            api.FormatIIFE,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifySyntax:      true,
		MinifyIdentifiers: true,
		LegalComments:     api.LegalCommentsEndOfFile,
		Charset:           api.CharsetUTF8,
		Write:             false,
		Outfile:           out,
		Banner:            map[string]string{"js": playground.BannerPrefix + sum + " */"},
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return errors.New(strings.Join(msgs, "\n"))
	}
	for _, f := range res.OutputFiles {
		if err := os.WriteFile(f.Path, f.Contents, 0o644); err != nil {
			return err
		}
	}
	return nil
}
