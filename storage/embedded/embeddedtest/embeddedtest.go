// Package embeddedtest runs a test binary with an embedded store of its
// own. It is imported by tests only, and imports embedded only, so that
// the tests of storage and of its subpackages can use it.
package embeddedtest

import (
	"log/slog"
	"os"

	"referrals/storage/embedded"
)

// Run starts the embedded store in a fresh temporary directory, returns
// what run returns with it, then stops the store and removes the
// directory.
func Run(run func(*embedded.Server) int) int {
	dir, err := os.MkdirTemp("", "referrals-test-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	local, err := embedded.Start(dir, "", slog.Default())
	if err != nil {
		panic(err)
	}
	defer local.Stop()
	return run(local)
}
