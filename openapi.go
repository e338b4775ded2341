// Package gateway is the root of the Dynamic Workers gateway module. It
// embeds the API's OpenAPI description so the binary serves what it implements.
package gateway

import _ "embed"

// OpenAPI is openapi.yaml, served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
