module github.com/eventrelay/eventrelay

go 1.26.0

require (
	github.com/mattn/go-isatty v0.0.20
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
