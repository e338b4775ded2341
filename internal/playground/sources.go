package playground

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"regexp"
	"sort"
)

// BannerPrefix starts the first line of assets/app.js; the hex SHA-256 of
// the bundle's sources (SourceHash) follows it, so a test can tell a bundle
// that was not rebuilt after its sources changed.
const BannerPrefix = "/* playground bundle, built by `go generate ./internal/playground` from sources sha256:"

// bannerRE reads the hash back from a bundle.
var bannerRE = regexp.MustCompile(`^` + regexp.QuoteMeta(BannerPrefix) + `([0-9a-f]{64})`)

// SourceHash hashes what the bundle is built from: every file under src/
// and package.json and package-lock.json, read from fsys (the playground
// directory), names and contents, in a fixed order.
func SourceHash(fsys fs.FS) (string, error) {
	names := []string{"package.json", "package-lock.json"}
	err := fs.WalkDir(fsys, "src", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", err
		}
		h.Write([]byte(path.Clean(name) + "\x00"))
		h.Write(data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// BundleSourceHash returns the source hash the embedded bundle was built
// from ("" if its banner is missing).
func BundleSourceHash() string {
	data, _ := assets.ReadFile("assets/app.js")
	m := bannerRE.FindSubmatch(data)
	if m == nil {
		return ""
	}
	return string(m[1])
}
