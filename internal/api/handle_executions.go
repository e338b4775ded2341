package api

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/dynamic-workers/gateway/execution"
)

// handleSubmit serves POST /executions: the service validates the request
// as POST /execute's and queues it; the answer is 202 at once, and a
// worker runs it later.
func handleSubmit(svc execution.Service, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		members, err := readJSONObject(w, r, opts.MaxRequestBytes)
		if err != nil {
			return err
		}
		id := startExecution(w, r)
		acc, err := svc.Submit(r.Context(), callerOf(r.Context()), execution.RunRequest{ID: id, Body: members})
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/executions/"+acc.ID)
		encode(w, http.StatusAccepted, mediaJSON, acc)
		return nil
	}
}

// handleGet serves GET /executions/{id}: the caller's own record, its
// result as stored (spliced in, not decoded and encoded again).
func handleGet(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rec, err := svc.Get(r.Context(), callerOf(r.Context()), chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		return writeRecord(w, http.StatusOK, rec)
	}
}

// writeRecord writes rec, its stored result spliced in.
func writeRecord(w http.ResponseWriter, status int, rec *execution.StoredRecord) error {
	body, err := rec.MarshalJSON()
	if err != nil {
		return err
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err = w.Write(body)
	return err
}

// handleList serves GET /executions: the caller's records, newest first.
func handleList(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := r.URL.Query()
		page, err := svc.List(r.Context(), callerOf(r.Context()), execution.ListQuery{Status: v.Get("status"), Limit: v.Get("limit"), Cursor: v.Get("cursor")})
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, mediaJSON, page)
		return nil
	}
}

// handleCancel serves DELETE /executions/{id}: a queued execution is
// cancelled at once (200), a running one is asked to stop (202; its record
// turns cancelled when it has). A synchronous one ends with its request.
func handleCancel(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rec, running, err := svc.Cancel(r.Context(), callerOf(r.Context()), chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		status := http.StatusOK
		if running {
			status = http.StatusAccepted
		}
		return writeRecord(w, status, rec)
	}
}
