package execution

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodeRequest reads a request body, which must be one JSON object, into
// its members: what every front door hands the Service (it validates the
// members and names each one at fault). Anything else is a
// ProblemMalformedJSON saying what is wrong.
func DecodeRequest(body []byte) (map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	// One object and nothing after it but white space: what the decoder
	// below accepts, without its copy of the body. Anything else goes
	// the decoder's way, for its account of what is wrong.
	if err := json.Unmarshal(body, &members); err == nil && members != nil {
		return members, nil
	}
	members = nil
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&members); err != nil {
		var notObject *json.UnmarshalTypeError
		if errors.As(err, &notObject) {
			return nil, NewProblem(ProblemMalformedJSON, "request body must be a JSON object, not "+notObject.Value)
		}
		return nil, NewProblem(ProblemMalformedJSON, "request body is not valid JSON: "+jsonErrorDetail(err))
	}
	if members == nil {
		return nil, NewProblem(ProblemMalformedJSON, "request body must be a JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, NewProblem(ProblemMalformedJSON, "request body has data after its JSON value")
	}
	return members, nil
}

func jsonErrorDetail(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%v (at byte %d)", syntax, syntax.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of body"
	}
	return err.Error()
}
