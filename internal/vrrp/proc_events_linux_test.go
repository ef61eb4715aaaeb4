package vrrp

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// parseProcEvents reads the kernel's messages: processes, not threads.
func TestParseProcEvents(t *testing.T) {
	msg := func(what uint32, data ...uint32) []byte {
		b := make([]byte, 16+20+16+4*len(data))
		binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
		binary.NativeEndian.PutUint32(b[16:], 1) // CN_IDX_PROC
		binary.NativeEndian.PutUint32(b[36:], what)
		for i, d := range data {
			binary.NativeEndian.PutUint32(b[52+4*i:], d)
		}
		return b
	}
	var all []byte
	for _, m := range [][]byte{
		msg(0x1, 10, 10, 11, 11),      // fork of process 11
		msg(0x1, 10, 10, 12, 10),      // a thread of 10
		msg(0x2, 13, 13),              // exec of 13
		msg(0x200, 14, 14),            // renamed
		msg(0x80000000, 15, 15, 0, 9), // exit of 15
		msg(0x80000000, 16, 10, 0, 9), // a thread of 10 ends
		msg(0x4, 17, 17, 0, 0),        // uid change: nothing
	} {
		all = append(all, m...)
	}
	changed, ended := parseProcEvents(all)
	if fmt.Sprint(changed) != "[11 13 14]" || fmt.Sprint(ended) != "[15]" {
		t.Errorf("changed %v, ended %v; want [11 13 14], [15]", changed, ended)
	}
}
