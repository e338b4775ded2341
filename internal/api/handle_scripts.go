package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dynamic-workers/gateway/execution"
)

// handlePutScript serves PUT /scripts/{name}: the service validates the
// code part of an execution request, resolves and bundles its
// dependencies, and stores it as a version: 201 for a new one, 200 when
// it is the latest already.
func handlePutScript(svc execution.Service, opts Options) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		members, err := readJSONObject(w, r, opts.MaxRequestBytes)
		if err != nil {
			return err
		}
		script, created, err := svc.PutScript(r.Context(), callerOf(r.Context()), chi.URLParam(r, "name"), members)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
			w.Header().Set("Location", "/scripts/"+script.Name)
		}
		encode(w, status, mediaJSON, script)
		return nil
	}
}

// handleGetScript serves GET /scripts/{name}: its latest version.
func handleGetScript(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		script, err := svc.GetScript(r.Context(), callerOf(r.Context()), chi.URLParam(r, "name"))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, mediaJSON, script)
		return nil
	}
}

// handleListScripts serves GET /scripts: the caller's scripts.
func handleListScripts(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		list, err := svc.ListScripts(r.Context(), callerOf(r.Context()))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, mediaJSON, list)
		return nil
	}
}

// handleScriptVersions serves GET /scripts/{name}/versions, newest first.
func handleScriptVersions(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		list, err := svc.ScriptVersions(r.Context(), callerOf(r.Context()), chi.URLParam(r, "name"))
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, mediaJSON, list)
		return nil
	}
}

// handleDeleteScript serves DELETE /scripts/{name}: every version goes;
// 204.
func handleDeleteScript(svc execution.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := svc.DeleteScript(r.Context(), callerOf(r.Context()), chi.URLParam(r, "name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
