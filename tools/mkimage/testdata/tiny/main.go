// Command tiny stands in for the consumer in the image tests: a static
// binary that answers `version` the way the consumer does, built in a
// second instead of the consumer's minutes on a cold cache. The real
// binary goes into the image with `make image`.
package main

import (
	"fmt"
	"os"
)

var version, commit = "dev", "unknown"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Printf("consumer %s (commit %s)\n", version, commit)
		return
	}
	os.Exit(2)
}
