package vrrp

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// procMsg builds a kernel proc-connector datagram as the kernel sends
// it: struct nlmsghdr (16 bytes), struct cn_msg (20), struct proc_event
// (what, cpu, timestamp_ns: 16; then the 24-byte event_data union):
// 76 bytes.
func procMsg(what, seq, ack uint32, data ...uint32) []byte {
	b := make([]byte, 76)
	binary.NativeEndian.PutUint32(b[0:], 76)      // nlmsg_len
	binary.NativeEndian.PutUint16(b[4:], 3)       // NLMSG_DONE
	binary.NativeEndian.PutUint32(b[16:], 1)      // cn_msg.id.idx = CN_IDX_PROC
	binary.NativeEndian.PutUint32(b[20:], 1)      // cn_msg.id.val = CN_VAL_PROC
	binary.NativeEndian.PutUint32(b[24:], seq)    // cn_msg.seq
	binary.NativeEndian.PutUint32(b[28:], ack)    // cn_msg.ack
	binary.NativeEndian.PutUint16(b[32:], 40)     // cn_msg.len: sizeof(struct proc_event)
	binary.NativeEndian.PutUint32(b[36:], what)   // proc_event.what
	binary.NativeEndian.PutUint64(b[44:], 123456) // timestamp_ns (after the cpu)
	for i, d := range data {
		binary.NativeEndian.PutUint32(b[52+4*i:], d) // event_data
	}
	return b
}

// parseProcEvents reads the kernel's messages: processes, not threads.
func TestParseProcEvents(t *testing.T) {
	var all []byte
	for _, m := range [][]byte{
		procMsg(0x1, 0, 0, 10, 10, 11, 11),      // fork of process 11 by 10
		procMsg(0x1, 0, 0, 10, 10, 12, 10),      // a thread of 10
		procMsg(0x1, 0, 0, 20, 10, 13, 13),      // process 13 forked by a thread of 10
		procMsg(0x2, 0, 0, 14, 14),              // exec of 14
		procMsg(0x200, 0, 0, 15, 15, 0x6f6f66),  // renamed
		procMsg(0x80000000, 0, 0, 16, 16, 0, 9), // exit of 16
		procMsg(0x80000000, 0, 0, 17, 10, 0, 9), // a thread of 10 ends
		procMsg(0x4, 0, 0, 18, 18, 0, 0),        // uid change: nothing
		procMsg(0x0, 7, 8, 0),                   // an ack: nothing
	} {
		all = append(all, m...)
	}
	got := fmt.Sprint(parseProcEvents(all))
	want := "[{1 11 10} {1 13 10} {2 14 } {512 15 } {2147483648 16 }]"
	if got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	// cut short or misaligned: no panic, what is whole is read
	short := procMsg(0x2, 0, 0, 14, 14)
	for _, b := range [][]byte{short[:50], append(procMsg(0x2, 0, 0, 21, 21), 1, 2), short[:20]} {
		_ = parseProcEvents(b)
	}
	odd := procMsg(0x2, 0, 0, 21, 21)
	binary.NativeEndian.PutUint32(odd, 75) // a length not a multiple of 4
	if got := fmt.Sprint(parseProcEvents(odd)); got != "[{2 21 }]" {
		t.Errorf("odd length: %s", got)
	}
	// the listen's ack: PROC_EVENT_NONE, the kernel's seq, our ack plus
	// one, err (as captured here: seq 26256 for a request of 12345)
	if ok, e := procAck(procMsg(0, 26256, 42, 0), 41); !ok || e != 0 {
		t.Errorf("ack not taken: %v %d", ok, e)
	}
	if ok, e := procAck(procMsg(0, 26256, 42, 22), 41); !ok || e != 22 {
		t.Errorf("ack error not read: %v %d", ok, e)
	}
	for _, m := range [][]byte{procMsg(0, 41, 41, 0), procMsg(0x1, 41, 42, 1, 1, 2, 2), procMsg(0, 41, 0, 0)} {
		if ok, _ := procAck(m, 41); ok {
			t.Errorf("taken as the ack: % x", m[16:40])
		}
	}
}
