package xdp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
)

// encapFrame wraps an inner IP packet in an outer IPv4 or IPv6 header.
// ect returns a copy of the IP packet ip with ECN field e (IPv4: the
// header checksum recomputed).
func ect(ip []byte, e byte) []byte {
	p := slices.Clone(ip)
	if p[0]>>4 == 4 {
		p[1] = p[1]&^3 | e
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:], csumFold(csumAdd(0, p[:int(p[0]&0xf)*4])))
		return p
	}
	p[1] = p[1]&^0x30 | e<<4
	return p
}

// outerCE marks the outer header of an encapsulated frame CE.
func outerCE(f []byte) []byte {
	if binary.BigEndian.Uint16(f[12:]) == 0x0800 {
		copy(f[14:], ect(f[14:34], 3))
		return f
	}
	f[15] |= 3 << 4
	return f
}

func encapFrame(outerSrc, outerDst netip.Addr, inner []byte, innerV6 bool) []byte {
	proto := uint8(4)
	if innerV6 {
		proto = 41
	}
	var outer []byte
	et := uint16(0x0800)
	if outerSrc.Is4() {
		outer = make([]byte, 20)
		outer[0] = 0x45
		binary.BigEndian.PutUint16(outer[2:], uint16(20+len(inner)))
		outer[8], outer[9] = 64, proto
		copy(outer[12:], outerSrc.AsSlice())
		copy(outer[16:], outerDst.AsSlice())
		binary.BigEndian.PutUint16(outer[10:], csumFold(csumAdd(0, outer)))
	} else {
		et = 0x86dd
		outer = make([]byte, 40)
		outer[0] = 0x60
		binary.BigEndian.PutUint16(outer[4:], uint16(len(inner)))
		outer[6], outer[7] = proto, 64
		copy(outer[8:], outerSrc.AsSlice())
		copy(outer[24:], outerDst.AsSlice())
	}
	f := make([]byte, 14)
	m := realMAC(outerDst)
	copy(f, m[:])
	copy(f[6:], directorMAC[:])
	binary.BigEndian.PutUint16(f[12:], et)
	return append(append(f, outer...), inner...)
}

func TestDecap(t *testing.T) {
	requireBPF(t)
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	pin := fmt.Sprintf("/sys/fs/bpf/xd-test-%d-%x", os.Getpid(), h.Sum32())
	if _, err := ensureBPFFS(pin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = RemovePinned(pin) })
	var objs decapObjects
	spec, err := loadDecap()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pin}}); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	d := &Decap{objs: objs}
	if err := d.SetVIPs([]netip.Addr{vip4, vip6}); err != nil {
		t.Fatal(err)
	}
	rsAddr, rs6 := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")
	in4 := syn(client(1), 40000, vip4, 80).ip()
	in6 := syn(client6(1), 40000, vip6, 80).ip()
	other := syn(client(1), 40000, netip.MustParseAddr("192.0.2.77"), 80).ip()
	tests := []struct {
		name    string
		frame   []byte
		verdict uint32
		inner   []byte // expected IP packet after the Ethernet header; nil = unchanged
		et      uint16
		counter string
	}{
		{"ipip", encapFrame(tunSrc, rsAddr, in4, false), xdpPass, in4, 0x0800, "decapsulated"},
		{"ip6ip6", encapFrame(tunSrc6, rs6, in6, true), xdpPass, in6, 0x86dd, "decapsulated"},
		{"4in6", encapFrame(tunSrc6, rs6, in4, false), xdpPass, in4, 0x0800, "decapsulated"},
		{"6in4", encapFrame(tunSrc, rsAddr, in6, true), xdpPass, in6, 0x86dd, "decapsulated"},
		{"inner not a vip", encapFrame(tunSrc, rsAddr, other, false), xdpPass, nil, 0, "pass_not_vip"},
		{"plain tcp", syn(client(1), 40000, vip4, 80).frame(), xdpPass, nil, 0, "pass_not_tunnel"},
		{"truncated inner", encapFrame(tunSrc, rsAddr, in4[:10], false), xdpDrop, nil, 0, "drop_malformed"},
		// RFC 6040: an outer congestion mark reaches an ECN-capable inner
		// packet (its IPv4 checksum kept right), not a not-ECT one
		{"ce ipip ect0", outerCE(encapFrame(tunSrc, rsAddr, ect(in4, 2), false)), xdpPass, ect(in4, 3), 0x0800, "decapsulated"},
		{"ce ip6ip6 ect1", outerCE(encapFrame(tunSrc6, rs6, ect(in6, 1), true)), xdpPass, ect(in6, 3), 0x86dd, "decapsulated"},
		{"ce 6in4 ect0", outerCE(encapFrame(tunSrc, rsAddr, ect(in6, 2), true)), xdpPass, ect(in6, 3), 0x86dd, "decapsulated"},
		{"ce ipip not-ect", outerCE(encapFrame(tunSrc, rsAddr, in4, false)), xdpPass, in4, 0x0800, "decapsulated"},
		{"no ce ipip ect0", encapFrame(tunSrc, rsAddr, ect(in4, 2), false), xdpPass, ect(in4, 2), 0x0800, "decapsulated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := d.Stats()
			out := make([]byte, len(tt.frame)+256)
			ret, err := objs.GovsDecap.Run(&ebpf.RunOptions{Data: tt.frame, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := d.Stats()
			if ret != tt.verdict {
				t.Errorf("verdict %d, want %d", ret, tt.verdict)
			}
			delta := map[string]uint64{}
			for k, v := range after {
				if v != before[k] {
					delta[k] = v - before[k]
				}
			}
			if diff := cmp.Diff(map[string]uint64{tt.counter: 1}, delta); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			if tt.verdict != xdpPass {
				return
			}
			if tt.inner == nil {
				if !bytes.Equal(out[:len(tt.frame)], tt.frame) {
					t.Errorf("frame modified")
				}
				return
			}
			if !bytes.Equal(out[:12], tt.frame[:12]) || binary.BigEndian.Uint16(out[12:]) != tt.et {
				t.Errorf("ethernet header % x", out[:14])
			}
			if !bytes.Equal(out[14:14+len(tt.inner)], tt.inner) {
				t.Errorf("inner packet differs")
			}
		})
	}
}
