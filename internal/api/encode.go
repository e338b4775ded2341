package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/dynamic-workers/gateway/execution"
)

// encode writes v as JSON with the given status and content type.
func encode[T any](w http.ResponseWriter, status int, contentType string, v T) {
	data, err := marshal(v)
	if err != nil {
		http.Error(w, `{"code":"`+execution.ProblemInternal+`"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// marshal encodes v as JSON without HTML escaping, ending with a newline.
func marshal[T any](v T) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// isJSON reports whether content type ct is application/json, with
// parameters or in any case.
func isJSON(ct string) bool {
	mediaType, _, err := mime.ParseMediaType(ct)
	return err == nil && mediaType == "application/json"
}

// readJSONObject checks the Content-Type, reads at most limit bytes of body
// and returns the members of the single JSON object it holds.
func readJSONObject(w http.ResponseWriter, r *http.Request, limit int64) (map[string]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSON(ct) {
		return nil, execution.NewProblem(execution.ProblemUnsupportedMediaType,
			fmt.Sprintf("Content-Type must be application/json, not %q", r.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, execution.NewProblem(execution.ProblemBodyTooLarge,
				fmt.Sprintf("request body is larger than %d bytes", limit))
		}
		return nil, execution.NewProblem(execution.ProblemMalformedJSON, "could not read the request body")
	}
	return execution.DecodeRequest(body)
}
