package sched_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/sched"
)

func Example() {
	a := sched.NewDest(netip.MustParseAddrPort("10.0.0.1:80"), 4)
	b := sched.NewDest(netip.MustParseAddrPort("10.0.0.2:80"), 3)
	c := sched.NewDest(netip.MustParseAddrPort("10.0.0.3:80"), 2)
	s, err := sched.New("wrr", sched.Options{})
	if err != nil {
		panic(err)
	}
	s.Update([]*sched.Dest{a, b, c})
	f := sched.Flow{Proto: sched.TCP, Src: netip.MustParseAddrPort("203.0.113.1:40000"), Dst: netip.MustParseAddrPort("192.0.2.10:80")}
	for range 9 {
		fmt.Print(s.Pick(f).Addr.Addr().As4()[3], " ")
	}
	fmt.Println()
	// Output: 1 1 2 1 2 3 1 2 3
}

func ExampleService() {
	a := sched.NewDest(netip.MustParseAddrPort("10.0.0.1:80"), 1)
	b := sched.NewDest(netip.MustParseAddrPort("10.0.0.2:80"), 1)
	svc, err := sched.NewService(sched.ServiceConfig{Scheduler: "rr", Persistence: 5 * time.Minute, PersistMask: 24, MultiPort: true})
	if err != nil {
		panic(err)
	}
	svc.Update([]*sched.Dest{a, b})
	vip := netip.MustParseAddr("192.0.2.10")
	for _, c := range []struct {
		client string
		port   uint16
	}{{"203.0.113.5:4000", 80}, {"203.0.113.77:4001", 443}, {"198.51.100.1:5000", 80}} {
		f := sched.Flow{Proto: sched.TCP, Src: netip.MustParseAddrPort(c.client), Dst: netip.AddrPortFrom(vip, c.port)}
		d, err := svc.Schedule(f)
		if err != nil {
			panic(err)
		}
		fmt.Println(c.client, "->", d)
		defer svc.Release(f) // when the connection ends
	}
	// Output:
	// 203.0.113.5:4000 -> 10.0.0.1:80
	// 203.0.113.77:4001 -> 10.0.0.1:80
	// 198.51.100.1:5000 -> 10.0.0.2:80
}
