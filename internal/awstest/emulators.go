package awstest

import (
	"errors"
	"os"
	"testing"

	"github.com/eventrelay/eventrelay/internal/emulators"
	"github.com/eventrelay/eventrelay/internal/testnet"
)

// Emulator is a real-protocol emulator process started for a test and
// killed by PID when the test ends.
type Emulator = emulators.Process

// requireEmulators returns the emulators' directory, skipping the test when
// they are not installed unless EVENTRELAY_REQUIRE_EMULATORS is set (CI
// sets it, so there a missing emulator fails).
func requireEmulators(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, emulators.ErrNotInstalled) && os.Getenv("EVENTRELAY_REQUIRE_EMULATORS") == "" {
		t.Skipf("%v; CI installs them", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func emulatorsDir(t testing.TB) string {
	t.Helper()
	dir, err := emulators.FindDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func logFile(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// StartKinesis starts kinesis-local on free ports for the test.
func StartKinesis(t testing.TB) *Emulator {
	t.Helper()
	ports := testnet.FreePorts(t, 2)
	p, err := emulators.Kinesis(emulatorsDir(t), ports[0], ports[1], logFile(t, "kinesis"))
	requireEmulators(t, err)
	t.Cleanup(p.Stop)
	return p
}

// StartDynamoDB starts dynalite on a free port for the test.
func StartDynamoDB(t testing.TB) *Emulator {
	t.Helper()
	p, err := emulators.DynamoDB(emulatorsDir(t), testnet.FreePorts(t, 1)[0], logFile(t, "dynalite"))
	requireEmulators(t, err)
	t.Cleanup(p.Stop)
	return p
}
