// Package lint holds tests that enforce the project's conventions
// (../../STYLE.md of the team): every package documents itself, the
// configuration layer depends on no dataplane, libraries do not use the
// global logger or init functions.
package lint
