package packages

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// npmArgs are npm's flags for one resolution. npm resolves (nested
// versions where two packages need different ones), fetches through the
// guard, checks each tarball's integrity and unpacks it; it runs no
// lifecycle script (--ignore-scripts), makes no links (--no-bin-links),
// keeps nothing between resolutions (its cache is the work directory's),
// and asks the registry nothing but metadata and tarballs.
func npmArgs(registry, work string) []string {
	return []string{
		"install",
		"--ignore-scripts",
		"--no-bin-links",
		"--no-audit",
		"--no-fund",
		"--no-update-notifier",
		"--omit=dev",
		"--install-strategy=hoisted",
		"--replace-registry-host=never",
		"--fetch-retries=0",
		"--prefer-online",
		"--loglevel=error",
		"--registry=" + registry,
		"--cache=" + filepath.Join(work, ".npm"),
		"--userconfig=" + filepath.Join(work, ".config", "user.npmrc"),
		"--globalconfig=" + filepath.Join(work, ".config", "global.npmrc"),
	}
}

// runNPM installs the dependencies of work/package.json with npm, through
// the registry at registry. Its environment is only what it needs: no npm
// configuration or token of the gateway's environment reaches it. It is
// killed, with anything it started, when ctx ends.
func runNPM(ctx context.Context, npm, registry, work string) error {
	// Empty configuration files: none of the machine's is read.
	if err := os.MkdirAll(filepath.Join(work, ".config"), 0o700); err != nil {
		return err
	}
	for _, f := range []string{"user.npmrc", "global.npmrc"} {
		if err := os.WriteFile(filepath.Join(work, ".config", f), nil, 0o600); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, npm, npmArgs(registry, work)...)
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "NO_COLOR=1", "npm_config_update_notifier=false"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return fmt.Errorf("npm install: %w: %s", err, msg)
	}
	return nil
}

// npmDefaultRegistry asks npm, with no configuration, which registry it
// uses: the default of packages.registry.
func npmDefaultRegistry(ctx context.Context, npm, scratch string) (string, error) {
	dir, err := os.MkdirTemp(scratch, "config-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	empty := filepath.Join(dir, "empty.npmrc")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, npm, "config", "get", "registry", "--userconfig="+empty, "--globalconfig="+empty)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// lockPackage is one package of npm's package-lock.json.
type lockPackage struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Integrity string `json:"integrity"`
	Link      bool   `json:"link"`
}

// readLock reads the packages npm installed in work: the set, each by its
// path under node_modules.
func readLock(work string) ([]Package, error) {
	data, err := os.ReadFile(filepath.Join(work, "package-lock.json"))
	if err != nil {
		return nil, err
	}
	var lock struct {
		Packages map[string]lockPackage `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("read package-lock.json: %w", err)
	}
	var set []Package
	for where, p := range lock.Packages {
		if where == "" {
			continue // the root: our package.json
		}
		if p.Link {
			return nil, fmt.Errorf("npm linked %s instead of installing it", where)
		}
		name := p.Name
		if name == "" {
			i := strings.LastIndex(where, "node_modules/")
			name = where[i+len("node_modules/"):]
		}
		set = append(set, Package{Path: where, Name: name, Version: p.Version, Integrity: p.Integrity})
	}
	return set, nil
}
