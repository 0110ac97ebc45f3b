// Package studio owns hy3d's browser pages: the studio at / (picture to mesh,
// with a 3D viewer) and the dashboard at /dashboard. Their sources live in
// src/ and are bundled by esbuild (bundle.mjs, run by make) into dist/, which
// this package embeds; dist/ is not committed, so a binary built before the
// bundle has no pages and Built reports it.
package studio

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Files is the built bundle: index.html, dashboard.html and their assets.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path; fs.Sub fails only on invalid ones
	}
	return sub
}

// Built reports whether the bundle was built into this binary.
func Built() bool {
	_, err := fs.Stat(Files(), "index.html")
	return err == nil
}
