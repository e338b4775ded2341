package api_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// encodeAs encodes data in a content coding named as (its first one, in
// any case); an unknown name leaves data as it is.
func encodeAs(t *testing.T, as string, data []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch strings.ToLower(strings.TrimSpace(strings.Split(as, ",")[0])) {
	case "gzip", "x-gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "zstd":
		z, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Error(err)
			return data
		}
		w = z
	default:
		return data
	}
	_, _ = w.Write(data)
	_ = w.Close()
	return buf.Bytes()
}

// decodings returns data read in every content coding that it parses as.
func decodings(data []byte) map[string][]byte {
	out := map[string][]byte{"identity": data}
	readers := map[string]func(io.Reader) (io.Reader, error){
		"gzip":        func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"zlib":        func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) },
		"deflate-raw": func(r io.Reader) (io.Reader, error) { return flate.NewReader(r), nil },
		"zstd": func(r io.Reader) (io.Reader, error) {
			d, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			return d.IOReadCloser(), nil
		},
	}
	for name, open := range readers {
		if r, err := open(bytes.NewReader(data)); err == nil {
			if b, err := io.ReadAll(r); len(b) > 0 || err == nil {
				out[name] = b
			}
		}
	}
	return out
}

// TestAttackCapabilityContentEncoding: the configured headers' values are
// masked in the service's answer. A guest that asked the service for a
// content coding the runtime does not decode (or a service that uses one
// anyway) got the answer's bytes still encoded, where no masker sees the
// echoed credential, and decoded them itself. Whatever the coding and
// whatever the guest asks for, the bytes the guest gets hold no credential
// in any coding, and a decoded body carries no Content-Encoding.
func TestAttackCapabilityContentEncoding(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	for _, as := range []string{"gzip", "GZIP", "x-gzip", "deflate", "zstd", "gzip, deflate", "deflate, gzip", "identity", "compress"} {
		for _, asked := range []string{"", as, "gzip, deflate, br, zstd, x-gzip"} {
			t.Run(fmt.Sprintf("%s asked %q", as, asked), func(t *testing.T) {
				code := fmt.Sprintf(`export default { async fetch(req, env) {
  try {
    const r = await env.reader.fetch("encoded?as=" + encodeURIComponent(%q), %q ? { headers: { "accept-encoding": %q } } : {});
    const b = new Uint8Array(await r.arrayBuffer());
    return new Response(r.status + "|" + (r.headers.get("content-encoding") ?? "none") + "|" + [...b].map((x) => x.toString(16).padStart(2, "0")).join(""));
  } catch (e) { return new Response("refused " + e.message); }
} }`, as, asked, asked)
				res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
				wantSuccess(t, res)
				readable := as == "gzip" || as == "identity"
				if strings.HasPrefix(res.Response.Body, "refused ") {
					if readable {
						t.Errorf("a %s answer was refused: %s", as, res.Response.Body)
					}
					return // the answer never reached the guest
				}
				if readable && !strings.Contains(res.Response.Body, hex.EncodeToString([]byte("auth=[REDACTED]"))) {
					t.Errorf("a %s answer reached the guest as %q, want it decoded and masked", as, res.Response.Body)
				}
				parts := strings.SplitN(res.Response.Body, "|", 3)
				if len(parts) != 3 {
					t.Fatalf("guest saw %q", res.Response.Body)
				}
				data, err := hex.DecodeString(parts[2])
				if err != nil {
					t.Fatal(err)
				}
				for coding, plain := range decodings(data) {
					noCredentials(t, "the answer read as "+coding, string(plain))
				}
				if text := string(data); strings.HasPrefix(text, "auth=") && parts[1] != "none" && parts[1] != "identity" {
					t.Errorf("a decoded body came with Content-Encoding %q", parts[1])
				}
			})
		}
	}
}

// TestAttackCapabilityRanges: a service that serves ranges of its answer
// (http.ServeContent does) let the guest fetch an echoed credential in
// pieces, each too short to be masked, and join them. The guest's Range
// must not reach the service, in any spelling.
func TestAttackCapabilityRanges(t *testing.T) {
	t.Parallel()
	f := startAttackGateway(t)
	// "auth=Bearer " is 12 bytes: the token starts at 12; cut it in two.
	for _, tt := range []struct{ header, first, second string }{
		{"Range", "bytes=0-17", "bytes=18-"},
		{"range", "bytes=12-17", "bytes=18-99"},
		{"RANGE", "bytes=-14", "bytes=0-19"},
		{"Range", "bytes=0-17, 18-40", "bytes=18-"},
	} {
		t.Run(tt.header+" "+tt.first, func(t *testing.T) {
			code := fmt.Sprintf(`export default { async fetch(req, env) {
  const part = async (r) => { const res = await env.reader.fetch("ranged", { headers: { %q: r } }); return res.status + ":" + await res.text(); };
  const a = await part(%q), b = await part(%q);
  return new Response(a + "|" + b + "|" + [...(a + b)].reverse().join(""));
} }`, tt.header, tt.first, tt.second)
			res := f.run(t, f.alice, map[string]any{"code": code, "capabilities": []string{"reader"}})
			wantSuccess(t, res)
			noCredentials(t, "the joined pieces", strings.NewReplacer("200:", "", "206:", "", "|", "").Replace(res.Response.Body))
			if !strings.Contains(res.Response.Body, "200:auth=[REDACTED]") {
				t.Errorf("guest saw %q, want the whole answer, masked", res.Response.Body)
			}
		})
	}
}
