package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/dynamic-workers/gateway/execution"
)

// Capabilities lists the operator's services the client's API key may ask
// for in Request.Capabilities (GET /capabilities): names, methods and base
// paths, never their credentials. The error is a *Error when the gateway
// refused the request.
func (c *Client) Capabilities(ctx context.Context) ([]execution.CapabilityInfo, error) {
	resp, err := c.call(ctx, http.MethodGet, "/capabilities", nil, mediaJSON)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list execution.CapabilityList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("client: decode capabilities: %w", err)
	}
	return list.Capabilities, nil
}
