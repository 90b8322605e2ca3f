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

func runVersion(_ context.Context, args []string, io stdio, _ func(string) string) int {
	if len(args) > 0 {
		fmt.Fprintln(io.err, "usage: consumer version")
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
