package gateway

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheBuild keeps the Dockerfile true without a Docker
// engine: it builds with the Go of go.mod and the Node.js the project uses,
// runs the same build commands as the Makefile, installs exactly the locked
// workerd, and follows the rules a Dockerfile linter would check.
func TestDockerfileMatchesTheBuild(t *testing.T) {
	dockerfile := read(t, "Dockerfile")
	makefile := strings.NewReplacer("$(GO) ", "go ", "$(NPM) ", "npm ").Replace(read(t, "Makefile"))

	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(read(t, "go.mod"))
	if goVersion == nil || !strings.Contains(dockerfile, "FROM golang:"+goVersion[1]+"-") {
		t.Errorf("the Dockerfile's Go image does not match go.mod's go %v", goVersion)
	}
	if !strings.Contains(dockerfile, "FROM node:20-") {
		t.Error("the Dockerfile's Node.js is not 20, the version the project is built and tested with")
	}
	for _, cmd := range []string{
		`go build -trimpath -ldflags "-X main.version=`,
		"go run ./worker/guestbuild",
		"npm ci --no-audit --no-fund",
	} {
		if !strings.Contains(dockerfile, cmd) || !strings.Contains(makefile, cmd) {
			t.Errorf("%q is not run by both the Dockerfile and the Makefile", cmd)
		}
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(read(t, "worker/package-lock.json")), &lock); err != nil {
		t.Fatal(err)
	}
	if lock.Packages["node_modules/workerd"].Version == "" || !strings.Contains(dockerfile, "COPY worker/package.json worker/package-lock.json") {
		t.Error("the Dockerfile does not install workerd from worker/package-lock.json")
	}

	// What a linter (hadolint) would flag.
	sc := bufio.NewScanner(strings.NewReader(dockerfile))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "FROM ") && (strings.Contains(line, ":latest") || !strings.Contains(strings.Fields(line)[1], ":")):
			t.Errorf("line %d: image not pinned to a version: %s", n, line)
		case strings.HasPrefix(line, "ADD "):
			t.Errorf("line %d: use COPY, not ADD: %s", n, line)
		case strings.Contains(line, "apt-get install") && (!strings.Contains(line, "--no-install-recommends") || !strings.Contains(line, "-y")):
			t.Errorf("line %d: apt-get install without -y --no-install-recommends", n)
		case strings.HasPrefix(line, "RUN cd "):
			t.Errorf("line %d: use WORKDIR, not cd", n)
		}
	}
	// packages.enabled is on by default: the runtime image needs npm, and
	// the node it runs on, from the Node.js stage.
	for _, want := range []string{"COPY --from=workerd /usr/local/bin/node ", "COPY --from=workerd /usr/local/lib/node_modules/npm ", "/usr/local/bin/npm"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the runtime image lacks npm for executions' dependencies: no %q", strings.TrimSpace(want))
		}
	}
	for _, want := range []string{"\nUSER ", "\nHEALTHCHECK ", "rm -rf /var/lib/apt/lists/*", "GATEWAY_LISTEN=0.0.0.0:8080", "EXPOSE 8080"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(dockerfile, "USER root") || strings.Contains(dockerfile, "USER 0") {
		t.Error("the runtime image runs as root")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
