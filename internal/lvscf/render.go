package lvscf

import (
	"bytes"
	"fmt"

	"github.com/govs/govs/internal/config"
)

// Render returns the converted configuration in keepalived syntax,
// preceded by a "!" comment naming the source file.
func Render(source string, cfg *config.Config, opts Options) []byte {
	var b bytes.Buffer
	node := "primary"
	if opts.Backup {
		node = "backup"
	}
	fmt.Fprintf(&b, "! Converted from Piranha %s by govs import (the %s router's configuration).\n", source, node)
	b.WriteString("! Review the import report before use: every mapping decision is listed there.\n\n")
	b.Write(config.Format(cfg))
	return b.Bytes()
}
