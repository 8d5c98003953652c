//go:build tools

// Package main pins the gqlgen generator so `go generate ./...` runs the
// version in go.mod.
package main

import _ "github.com/99designs/gqlgen"
