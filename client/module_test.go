package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestUsableFromAnotherModule does what the README tells a user of the
// client in another module to do: require the gateway's module and replace
// it with a checkout. The client needs nothing beyond the standard
// library, so the build needs no download (the module proxy is off).
func TestUsableFromAnotherModule(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	checkout, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/caller\n\ngo 1.26\n\nrequire github.com/dynamic-workers/gateway v0.0.0\n\n" +
			"replace github.com/dynamic-workers/gateway => " + checkout + "\n",
		"main.go": "package main\n\nimport \"github.com/dynamic-workers/gateway/client\"\n\n" +
			"func main() { _ = client.New(\"http://127.0.0.1:8080\") }\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", os.DevNull, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of a module using the client = %v:\n%s", err, out)
	}
}
