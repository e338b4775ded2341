package api

import (
	"mime"
	"strconv"
	"strings"

	"github.com/dynamic-workers/gateway/execution"
)

// Media types POST /execute can answer with, in the server's order of
// preference when the client likes several equally.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
	mediaSSE    = "text/event-stream"
)

var executeOffers = []string{mediaJSON, mediaNDJSON, mediaSSE}

// negotiate picks the representation of an execution from an Accept header
// (RFC 9110 §12.5.1): each offer gets the q-value of the most specific media
// range that matches it, and the offer with the highest non-zero q wins. No
// Accept header means JSON. Nothing acceptable is a 406 problem.
func negotiate(accept string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, nil
	}
	ranges := parseAccept(accept)
	best, bestQ := "", 0.0
	for _, offer := range executeOffers {
		if q := qualityOf(offer, ranges); q > bestQ {
			best, bestQ = offer, q
		}
	}
	if best == "" {
		return "", execution.NewProblem(execution.ProblemNotAcceptable,
			"Accept must allow application/json, application/x-ndjson or text/event-stream, not "+strconvQuote(accept))
	}
	return best, nil
}

type mediaRange struct {
	typ, subtype string
	q            float64
}

func parseAccept(accept string) []mediaRange {
	var ranges []mediaRange
	for _, part := range strings.Split(accept, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue // an unparseable range matches nothing
		}
		typ, subtype, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			parsed, err := strconv.ParseFloat(v, 64)
			if err != nil || parsed < 0 || parsed > 1 {
				continue
			}
			q = parsed
		}
		ranges = append(ranges, mediaRange{typ: typ, subtype: subtype, q: q})
	}
	return ranges
}

// qualityOf returns the q-value the most specific matching range gives offer.
func qualityOf(offer string, ranges []mediaRange) float64 {
	typ, subtype, _ := strings.Cut(offer, "/")
	q, specificity := 0.0, -1
	for _, r := range ranges {
		s := -1
		switch {
		case r.typ == typ && r.subtype == subtype:
			s = 2
		case r.typ == typ && r.subtype == "*":
			s = 1
		case r.typ == "*" && r.subtype == "*":
			s = 0
		}
		if s > specificity {
			q, specificity = r.q, s
		}
	}
	return q
}

func strconvQuote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}
