package transpile

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeServeChild()
	os.Exit(m.Run())
}
