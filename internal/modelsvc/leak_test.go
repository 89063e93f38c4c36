package modelsvc

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// modelsvc package starts goroutines that must all end with their context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
