package config

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// SetRealServerWeight changes the weight of rs in the model and returns the
// configuration files with only that one statement changed: the "weight"
// word of the real_server block is replaced, or a weight line is inserted
// after the block's opening brace. Everything else, comments included,
// stays byte for byte. rs must belong to c. The edit is made to the text
// c was read from, so it is refused when the file on disk has changed
// since: writing it would undo those changes.
func (c *Config) SetRealServerWeight(rs *RealServer, w int) (map[string][]byte, error) {
	if w < 0 || w > 65535 {
		return nil, fmt.Errorf("weight %d outside 0..65535", w)
	}
	if c.src == nil {
		return nil, fmt.Errorf("configuration was not read from a file")
	}
	var file *srcState
	for _, f := range c.src.files {
		if f.name == rs.Pos.File {
			file = f
		}
	}
	if file == nil {
		return nil, fmt.Errorf("%s: source file not loaded", rs.Pos)
	}
	if disk, err := os.ReadFile(file.name); err != nil {
		return nil, err
	} else if !bytes.Equal(disk, file.data) {
		return nil, fmt.Errorf("%s changed on disk since it was loaded: reload it first (writing the weight into the loaded text would undo those changes)", file.name)
	}
	var node *Node
	for _, it := range file.items {
		if node = findNode(it.node, rs.Pos, "real_server"); node != nil {
			break
		}
	}
	if node == nil {
		return nil, fmt.Errorf("%s: real_server statement not found in the source", rs.Pos)
	}
	if node.expanded {
		return nil, fmt.Errorf("%s: this real_server is written through variables or ~SEQ/~LST; change its weight by hand", rs.Pos)
	}
	data := file.data
	lines := lineStarts(data)
	var out []byte
	var wordNode *Node
	for _, ch := range node.Block {
		if ch.Keyword() == "weight" && ch.Pos.File == rs.Pos.File && len(ch.Words) == 2 {
			wordNode = ch
		}
	}
	if wordNode != nil && wordNode.expanded {
		return nil, fmt.Errorf("%s: the weight is written through a variable; change it by hand", wordNode.Pos)
	}
	if wordNode != nil && slices.Contains(file.conds, wordNode.Pos.Line) {
		return nil, fmt.Errorf("%s: the weight line is conditional (@ID) and may hold another host's weight; change it by hand", wordNode.Pos)
	}
	if wordNode != nil {
		wd := wordNode.Words[1]
		off := lines[wd.Pos.Line-1] + wd.Pos.Col - 1
		if off+len(wd.Text) > len(data) || string(data[off:off+len(wd.Text)]) != wd.Text {
			return nil, fmt.Errorf("%s: weight is not written literally (a variable?); change it by hand", wd.Pos)
		}
		out = append(append(append([]byte{}, data[:off]...), strconv.Itoa(w)...), data[off+len(wd.Text):]...)
	} else {
		brace := bytes.IndexByte(data[node.start:], '{')
		if brace < 0 {
			return nil, fmt.Errorf("%s: real_server block brace not found", rs.Pos)
		}
		at := node.start + brace + 1
		indent := strings.Repeat(" ", rs.Pos.Col-1+4)
		ins := "\n" + indent + "weight " + strconv.Itoa(w)
		out = append(append(append([]byte{}, data[:at]...), ins...), data[at:]...)
	}
	rs.Weight = w
	return map[string][]byte{file.name: out}, nil
}

func findNode(n *Node, pos Pos, kw string) *Node {
	if n.Pos == pos && n.Keyword() == kw {
		return n
	}
	for _, c := range n.Block {
		if f := findNode(c, pos, kw); f != nil {
			return f
		}
	}
	return nil
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}
