package client_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dynamic-workers/gateway/internal/api"
	"github.com/dynamic-workers/gateway/internal/api/apitest"
	"github.com/dynamic-workers/gateway/internal/loader/loadertest"
	"github.com/dynamic-workers/gateway/internal/loader/local"
	"github.com/dynamic-workers/gateway/internal/transpile"
)

// gatewayURL is a real gateway, with the real workerd runtime behind it,
// that the tests and examples of this package call.
var gatewayURL string

// backend is the runtime behind gatewayURL; tests put other gateways (one
// with API keys) in front of it too.
var backend *local.Pool

var testOptions = apitest.Options()

func TestMain(m *testing.M) {
	transpile.MaybeServeChild()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	backend = loadertest.StartLocal(mainTB{}, zerolog.Nop(), loadertest.Processes(1))
	defer backend.Close()
	svc := apitest.Service(zerolog.Nop(), backend, testOptions)
	svc.Start()
	srv := httptest.NewServer(api.NewHandler(zerolog.Nop(), svc, apitest.Front(testOptions)))
	defer srv.Close()
	gatewayURL = srv.URL
	return m.Run()
}

// mainTB lets TestMain start the runtime with loadertest, which reports
// through testing.TB; a failure there ends the test binary.
type mainTB struct{ testing.TB }

func (mainTB) Helper() {}

func (mainTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}

func (mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}
