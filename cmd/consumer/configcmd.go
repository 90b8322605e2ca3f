package main

import (
	"context"
	"fmt"

	"github.com/eventrelay/eventrelay/internal/config"
)

const configHelp = `Usage:
  consumer config example        print a commented configuration with every field
  consumer config check FILE     load FILE (plus EVENTRELAY_* overrides), validate it
                                 for 'consumer stream', and print it with secrets redacted

Every field can be overridden by an environment variable named after its path:
sink.kafka.brokers -> EVENTRELAY_SINK_KAFKA_BROKERS (lists comma-separated).
Exit codes: 0 valid, 2 invalid (each problem names its field).
`

func runConfig(_ context.Context, args []string, io stdio, getenv func(string) string) int {
	switch {
	case len(args) == 1 && args[0] == "example":
		io.out.Write(config.Example())
		return exitOK
	case len(args) == 2 && args[0] == "check":
		c, err := config.Load(args[1], getenv)
		if err == nil {
			err = c.ValidateStream()
		}
		if err != nil {
			fmt.Fprintf(io.err, "consumer config check: %s is invalid:\n%v\n", args[1], err)
			return exitUsage
		}
		out, err := c.Redacted()
		if err != nil {
			fmt.Fprintf(io.err, "consumer config check: %v\n", err)
			return exitBadInput
		}
		fmt.Fprintf(io.out, "# %s is valid; effective configuration (secrets redacted, zero values take defaults):\n%s", args[1], out)
		return exitOK
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		fmt.Fprint(io.err, configHelp)
		return exitOK
	}
	fmt.Fprint(io.err, configHelp)
	return exitUsage
}
