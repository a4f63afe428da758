//go:build tools

// Pins the CNCF distribution registry, the OCI registry the release tests push the chart (and image) to.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
