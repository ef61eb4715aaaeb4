package xdp

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TestBatchDeleteSkipsMissing: a key that is already gone must not stop
// the deletion of the keys after it (the kernel's batch delete stops at
// the first missing key).
func TestBatchDeleteSkipsMissing(t *testing.T) {
	requireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 3 * walkBatch
	var keys []uint32
	for i := uint32(0); i < n; i++ {
		if i%7 != 3 { // every seventh key is never stored
			if err := m.Put(i, i); err != nil {
				t.Fatal(err)
			}
		}
		keys = append(keys, i)
	}
	if err := batchDelete(m, keys); err != nil {
		t.Fatalf("batchDelete: %v", err)
	}
	var k, v uint32
	left := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		left++
		if left < 5 {
			t.Errorf("key %d still in the map", k)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d of %d keys left after batchDelete", left, n)
	}
}
