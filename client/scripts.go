package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dynamic-workers/gateway/execution"
)

// ScriptSource is what PutScript stores: the code part of an execution
// request (Code, or Modules and MainModule, Language, Dependencies,
// CompatibilityDate, CompatibilityFlags) and a default Env.
type ScriptSource struct {
	Code               string            `json:"code,omitempty"`
	Language           string            `json:"language,omitempty"`
	Modules            map[string]string `json:"modules,omitempty"`
	MainModule         string            `json:"mainModule,omitempty"`
	Dependencies       map[string]string `json:"dependencies,omitempty"`
	CompatibilityDate  string            `json:"compatibilityDate,omitempty"`
	CompatibilityFlags []string          `json:"compatibilityFlags,omitempty"`
	Env                map[string]any    `json:"env,omitempty"`
}

// PutScript stores src as a version of the key's script name (PUT
// /scripts/{name}), its dependencies resolved and bundled now; created is
// false when it is identical to a version stored before. Run it with a
// Request whose Script is name (the latest version) or name@version.
func (c *Client) PutScript(ctx context.Context, name string, src *ScriptSource) (script *execution.Script, created bool, err error) {
	body, err := json.Marshal(src)
	if err != nil {
		return nil, false, fmt.Errorf("client: encode script: %w", err)
	}
	resp, err := c.call(ctx, http.MethodPut, "/scripts/"+url.PathEscape(name), body, mediaJSON)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	var s execution.Script
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, false, fmt.Errorf("client: decode answer: %w", err)
	}
	return &s, resp.StatusCode == http.StatusCreated, nil
}

// GetScript returns the latest version of script name; an unknown one (or
// another key's) is a *Error with Code CodeNotFound.
func (c *Client) GetScript(ctx context.Context, name string) (*execution.Script, error) {
	var s execution.Script
	if err := c.callJSON(ctx, http.MethodGet, "/scripts/"+url.PathEscape(name), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListScripts returns the key's scripts, each at its latest version.
func (c *Client) ListScripts(ctx context.Context) (*execution.ScriptList, error) {
	var l execution.ScriptList
	if err := c.callJSON(ctx, http.MethodGet, "/scripts", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// ScriptVersions returns the versions of script name, newest first.
func (c *Client) ScriptVersions(ctx context.Context, name string) (*execution.ScriptVersions, error) {
	var v execution.ScriptVersions
	if err := c.callJSON(ctx, http.MethodGet, "/scripts/"+url.PathEscape(name)+"/versions", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DeleteScript deletes every version of script name.
func (c *Client) DeleteScript(ctx context.Context, name string) error {
	resp, err := c.call(ctx, http.MethodDelete, "/scripts/"+url.PathEscape(name), nil, mediaJSON)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
