//go:build tools

// Pins Prometheus and promtool: the observability tests and `ballast dev up --prometheus` scrape the local
// cluster with this server and check the shipped alert rules with promtool.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
