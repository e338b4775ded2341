package transpile

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
)

// sourceMap is the part of a version 3 source map needed to map generated
// positions back to sources.
type sourceMap struct {
	sources []string
	lines   [][]segment // by generated line (0-based)
}

type segment struct {
	genCol, src, srcLine, srcCol int // 0-based
}

func parseSourceMap(data []byte) (*sourceMap, error) {
	var raw struct {
		Version  int      `json:"version"`
		Sources  []string `json:"sources"`
		Mappings string   `json:"mappings"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw.Version != 3 {
		return nil, errors.New("not a version 3 source map")
	}
	sm := &sourceMap{sources: raw.Sources}
	var src, srcLine, srcCol int
	for _, line := range strings.Split(raw.Mappings, ";") {
		var segs []segment
		genCol := 0
		for _, field := range strings.Split(line, ",") {
			if field == "" {
				continue
			}
			values, err := decodeVLQ(field)
			if err != nil {
				return nil, err
			}
			genCol += values[0]
			if len(values) < 4 {
				continue // a generated position with no source
			}
			src += values[1]
			srcLine += values[2]
			srcCol += values[3]
			segs = append(segs, segment{genCol, src, srcLine, srcCol})
		}
		sm.lines = append(sm.lines, segs)
	}
	return sm, nil
}

const base64Digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// decodeVLQ decodes the base64 VLQ numbers of one mapping segment.
func decodeVLQ(s string) ([]int, error) {
	var out []int
	value, shift := 0, 0
	for i := 0; i < len(s); i++ {
		digit := strings.IndexByte(base64Digits, s[i])
		if digit < 0 {
			return nil, errors.New("bad VLQ digit")
		}
		value += (digit & 31) << shift
		if digit&32 != 0 {
			shift += 5
			continue
		}
		n := value >> 1
		if value&1 != 0 {
			n = -n
		}
		out = append(out, n)
		value, shift = 0, 0
	}
	if shift != 0 || len(out) == 0 {
		return nil, errors.New("truncated VLQ")
	}
	return out, nil
}

// lookup maps a 1-based generated position to a 1-based source position.
func (sm *sourceMap) lookup(line, col int) (src string, srcLine, srcCol int, ok bool) {
	if line < 1 || line > len(sm.lines) {
		return "", 0, 0, false
	}
	segs := sm.lines[line-1]
	i := sort.Search(len(segs), func(i int) bool { return segs[i].genCol > col-1 }) - 1
	if i < 0 {
		if len(segs) == 0 {
			return "", 0, 0, false
		}
		i = 0
	}
	s := segs[i]
	if s.src < 0 || s.src >= len(sm.sources) {
		return "", 0, 0, false
	}
	return sm.sources[s.src], s.srcLine + 1, s.srcCol + 1, true
}
