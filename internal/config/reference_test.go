package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynamic-workers/gateway/internal/config"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings")

// TestReferenceIsCurrent keeps docs/configuration.md equal to what the
// settings generate.
func TestReferenceIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	want := config.Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date; run: go test ./internal/config -update", path)
	}
}
