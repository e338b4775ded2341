package packages

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// errOverBudget is a tarball unpacking past what the set may take.
var errOverBudget = errors.New("over the byte bound")

// inspect reads a package's tarball as npm would unpack it and says what
// is wrong with it, before npm sees it: an entry that would land outside
// the package (an absolute path, a .. part), a link or device (npm drops
// links silently; a package that needs one does not work), or more
// unpacked bytes than budget (a compression bomb stops at the bound, not at
// the end of the stream). It returns the bytes the tarball unpacks to,
// headers included. PAX and GNU long names are read as npm reads them.
func inspect(r io.Reader, pkg string, budget int64) (int64, *Error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, &Error{Kind: Invalid, Package: pkg, Message: "its tarball is not gzip: " + err.Error()}
	}
	counted := &countingReader{r: zr, left: budget}
	tr := tar.NewReader(counted)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return counted.n, nil
		}
		if err != nil {
			return counted.n, tarError(pkg, err, budget)
		}
		if problem := entryProblem(h); problem != "" {
			return counted.n, &Error{Kind: Denied, Package: pkg, Message: "its tarball " + problem}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return counted.n, tarError(pkg, err, budget)
		}
	}
}

// tarError is a failure reading a tarball: over the bound, or broken.
func tarError(pkg string, err error, budget int64) *Error {
	if errors.Is(err, errOverBudget) {
		return &Error{Kind: TooLarge, Package: pkg, Message: fmt.Sprintf("it unpacks to more than the %d bytes left of packages.max_bytes", budget)}
	}
	return &Error{Kind: Invalid, Package: pkg, Message: "its tarball is broken: " + err.Error()}
}

// entryProblem says what is wrong with one tarball entry, or "".
func entryProblem(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink, tar.TypeLink:
		return fmt.Sprintf("has a link, %q → %q", h.Name, h.Linkname)
	default:
		return fmt.Sprintf("has %q, which is neither a file nor a directory (type %q)", h.Name, h.Typeflag)
	}
	name := strings.ReplaceAll(h.Name, "\\", "/")
	if strings.HasPrefix(name, "/") || len(name) > 1 && name[1] == ':' {
		return fmt.Sprintf("has an entry with an absolute path, %q", h.Name)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return fmt.Sprintf("has an entry outside the package, %q", h.Name)
		}
	}
	if path.Clean(name) == "." && h.Typeflag == tar.TypeReg {
		return "has a file with no name"
	}
	return ""
}

// countingReader counts what it reads and fails past left bytes.
type countingReader struct {
	r    io.Reader
	n    int64
	left int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errOverBudget
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.left -= int64(n)
	return n, err
}
