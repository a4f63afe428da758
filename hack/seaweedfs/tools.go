//go:build tools

// Pins SeaweedFS, the S3-compatible object store the s3:// model store tests start (`weed server -s3`).
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
