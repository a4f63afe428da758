//go:build tools

// Pins crane (go-containerregistry), the tool hack/image/build.sh assembles, writes and pushes the image with.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
