package webhook_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dynamic-workers/gateway/internal/webhook"
)

func TestValidateCallbackURL(t *testing.T) {
	t.Parallel()
	long := "https://hooks.example.com/" + strings.Repeat("a", webhook.MaxURLLength)
	tests := []struct {
		url          string
		allowPrivate bool
		want         string // "" for valid
	}{
		{"https://hooks.example.com/cb?token=x", false, ""},
		{"http://hooks.example.com:8080/a/b", false, ""},
		{"https://93.184.215.14/cb", false, ""},
		{"http://127.0.0.1:9000/cb", true, ""},
		{"http://localhost:9000/cb", true, ""},
		{"", false, "scheme"},
		{"hooks.example.com/cb", false, "scheme"},
		{"//hooks.example.com/cb", false, "scheme"},
		{"ftp://hooks.example.com/", false, "scheme"},
		{"file:///etc/passwd", false, "scheme"},
		{"javascript:alert(1)", false, "scheme"},
		{"gopher://hooks.example.com/", true, "scheme"},
		{"HTTPS://hooks.example.com/", false, ""},
		{"http:///path", false, "host"},
		{"http:hooks.example.com", false, "host"},
		{"https://:443/", false, "host"},
		{"https://user@hooks.example.com/", false, "user name"},
		{"https://user:pass@hooks.example.com/", true, "user name"},
		{"https://hooks.example.com/cb#frag", false, "fragment"},
		{"https://hooks.example.com/cb#", false, "fragment"},
		{"https://hooks.example.com/c b", false, "spaces"},
		{"https://hooks.example.com/\ncb", false, "control"},
		{"https://hooks.example.com\t/cb", false, "control"},
		{"https://hooks.exa%mple.com/", false, "invalid URL escape"},
		{long, false, "longer than"},
		{"http://127.0.0.1/cb", false, "127.0.0.1 is a loopback address, which callbacks may not reach"},
		{"http://[::1]/cb", false, "::1 is a loopback address"},
		{"http://localhost/cb", false, "local or internal"},
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 50)], func(t *testing.T) {
			t.Parallel()
			err := webhook.ValidateCallbackURL(tt.url, webhook.Reach{AllowPrivate: tt.allowPrivate})
			if tt.want == "" {
				if err != nil {
					t.Errorf("ValidateCallbackURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if !errors.Is(err, webhook.ErrBadURL) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ValidateCallbackURL(%q) = %v, want ErrBadURL saying %q", tt.url, err, tt.want)
			}
		})
	}
}

// TestValidateCallbackURLKeepsTheURLOutOfErrors: a token in the query must
// not be echoed in the reason.
func TestValidateCallbackURLKeepsTheURLOutOfErrors(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://hooks.exa%mple.com/?token=SECRET", "https://h%zz/?token=SECRET", "ftp://h/?token=SECRET"} {
		if err := webhook.ValidateCallbackURL(u, webhook.Reach{}); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ValidateCallbackURL(%q) = %v, want an error without the token", u, err)
		}
	}
}
