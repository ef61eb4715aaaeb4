// Package config is govs's configuration layer: one model (Config,
// VirtualServer, RealServer, Check, VRRPInstance, ...) read from
// keepalived.conf syntax — includes, comments, quoted strings, $VAR
// substitution, nested blocks — with errors and warnings at FILE:LINE:COL;
// a validation pass that reports every problem; and a writer that renders
// the model back while keeping the text of blocks that did not change.
// It does no I/O beyond reading (and, when asked, atomically writing) the
// configuration files.
package config
