package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at build time by the Makefile:
// -ldflags "-X main.version=... -X main.commit=... -X main.buildDate=...".
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

const versionHelp = `Usage: consumer version

Prints the version, the commit and the build date stamped by 'make build', and
the Go version and platform, on one line. It takes no flags.

Example:
  consumer version
`

func runVersion(_ context.Context, args []string, io stdio, _ func(string) string) int {
	if len(args) > 0 {
		fmt.Fprint(io.err, versionHelp)
		if len(args) == 1 && isHelpFlag(args[0]) {
			return exitOK
		}
		return exitUsage
	}
	c, d := commit, buildDate
	if info, ok := debug.ReadBuildInfo(); ok && c == "" {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				c = s.Value
			case "vcs.time":
				d = s.Value
			}
		}
	}
	fmt.Fprintf(io.out, "consumer %s (commit %s, built %s, %s %s/%s)\n", version, orUnknown(c), orUnknown(d), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
