// Package migrations holds the versioned SQL schema of oauthd, one directory per
// SQL dialect, in goose format. The files are embedded into the binary so that
// `oauthd migrate up` and `oauthd serve` need nothing on disk.
//
// Rules: both dialect directories carry the same version numbers (a test checks
// it); every step has a working Down section; a released step is never edited,
// a new step is added instead.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
