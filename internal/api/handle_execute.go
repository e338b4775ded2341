package api

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog/hlog"

	"github.com/dynamic-workers/gateway/execution"
)

// handleExecute serves POST /execute: it hands the request to the service
// and renders the execution's events, as one JSON result or as a stream
// (NDJSON or SSE) as the Accept header asks. The events go to the client
// through an outbox, which never blocks the execution: the runtime is free
// once the result is in, however slowly the client reads; close then
// waits for the client, within bounds.
func handleExecute(svc execution.Service, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		media, err := negotiate(r.Header.Get("Accept"))
		if err != nil {
			return err
		}
		members, err := readJSONObject(w, r, opts.MaxRequestBytes)
		if err != nil {
			return err
		}
		id := startExecution(w, r)
		out := newSink(w, r, media, opts)
		defer out.close()
		req := execution.RunRequest{ID: id, Body: members, Buffered: media == mediaJSON}
		err = svc.Run(r.Context(), callerOf(r.Context()), req, out.event)
		if err == nil || r.Context().Err() != nil {
			return nil // done, or the client went away
		}
		log := hlog.FromRequest(r)
		var p *Problem
		switch {
		case errors.Is(err, errSlowClient) || errors.Is(err, errLifetime):
			// The outbox counted and logged it; the client is the cause.
			log.Info().Err(err).Msg("execution cancelled: the client reads too slowly")
			return nil
		case !out.started():
			return err // nothing sent yet: a problem response
		case errors.As(err, &p) && p.Code == execution.ProblemRecordNotStored:
			// Its result is not sent as if it were kept: the stream is cut.
			log.Error().Msg("execution ended but its record could not be stored; stream cut")
		default:
			log.Error().Err(err).Msg("execution failed mid-stream")
		}
		out.abort(err)
		return nil
	}
}
