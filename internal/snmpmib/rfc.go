package snmpmib

import (
	"net"
	"os"
	"strings"
	"time"

	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

var osHostname = os.Hostname

// link is what the RFC MIBs index and show of an instance's interface.
type link struct {
	index int
	mac   net.HardwareAddr
}

// instanceLink finds the interface of an instance; ok is false when it
// is not there (the RFC tables are indexed by its ifIndex) or the
// instance has no address to show (as keepalived, which leaves those out).
func instanceLink(cfg *vrrp.InstanceConfig, links map[string]net.Interface) (link, bool) {
	ifi, ok := links[cfg.Interface]
	if !ok || len(cfg.VirtualIPs) == 0 {
		return link{}, false
	}
	l := link{index: ifi.Index, mac: ifi.HardwareAddr}
	if cfg.VMAC != "" {
		l.mac = cfg.VMACAddr
		if len(l.mac) == 0 {
			l.mac = net.HardwareAddr{0, 0, 0x5e, 0, 1, byte(cfg.VRID)}
			if cfg.IsIPv6() {
				l.mac[4] = 2
			}
		}
	}
	return l, true
}

// rfcState is the RFC MIBs' state: initialize(1), backup(2), master(3).
func rfcState(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 2
	case vrrp.StateMaster:
		return 3
	}
	return 1
}

// ticks is d in hundredths of a second (0 when negative).
func ticks(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d / (10 * time.Millisecond))
}

// rfc2787Vars is VRRP-MIB (RFC 2787): the VRRPv2 instances.
func rfc2787Vars(in *statefiles.Input, o Options, links map[string]net.Interface) []agentx.Var {
	oper, assoc, stats := VRRPv2MIB.Append(1, 3, 1), VRRPv2MIB.Append(1, 4, 1), VRRPv2MIB.Append(2, 4, 1)
	vs := []agentx.Var{
		agentx.Integer(VRRPv2MIB.Append(1, 1, 0), 2),              // vrrpNodeVersion
		agentx.Integer(VRRPv2MIB.Append(1, 2, 0), truth(o.Traps)), // vrrpNotificationCntl
	}
	var checksum, version, vrid uint64
	for i := range in.VRRP.Instances {
		st := &in.VRRP.Instances[i]
		cfg := st.Config()
		l, ok := instanceLink(&cfg, links)
		if cfg.Version != 2 || !ok {
			continue
		}
		d := st.Counters.Dropped
		checksum, version, vrid = checksum+d[vrrp.DropChecksum], version+d[vrrp.DropVersion], vrid+d[vrrp.DropVRID]
		ix := []uint32{uint32(l.index), uint32(cfg.VRID)}
		auth := 1
		switch {
		case cfg.AuthAH:
			auth = 3
		case cfg.AuthPass != "":
			auth = 2
		}
		master := [4]byte{}
		if st.State == vrrp.StateBackup && st.MasterAddr.Is4() {
			master = st.MasterAddr.As4()
		}
		primary := [4]byte{}
		if st.LocalAddr.Is4() {
			primary = st.LocalAddr.As4()
		}
		vs = append(vs,
			agentx.Bytes(oper.Append(2).Append(ix...), l.mac),
			agentx.Integer(oper.Append(3).Append(ix...), rfcState(st.State)),
			agentx.Integer(oper.Append(4).Append(ix...), 1),
			agentx.Integer(oper.Append(5).Append(ix...), cfg.Priority),
			agentx.Integer(oper.Append(6).Append(ix...), len(cfg.VirtualIPs)),
			agentx.IPAddress(oper.Append(7).Append(ix...), master),
			agentx.IPAddress(oper.Append(8).Append(ix...), primary),
			agentx.Integer(oper.Append(9).Append(ix...), auth),
			agentx.Integer(oper.Append(11).Append(ix...), int(cfg.AdvertInterval/time.Second)),
			agentx.Integer(oper.Append(12).Append(ix...), truth(!cfg.NoPreempt)),
			// a TimeStamp: the subagent's up time when it left INIT
			agentx.TimeTicks(oper.Append(13).Append(ix...), upStamp(st, o)),
			agentx.Integer(oper.Append(14).Append(ix...), 1), // ip
			agentx.Integer(oper.Append(15).Append(ix...), 1), // active
		)
		for _, v := range cfg.VirtualIPs {
			if a := v.Prefix.Addr(); a.Is4() {
				b := a.As4()
				vs = append(vs, agentx.Integer(assoc.Append(2).Append(ix...).Append(uint32(b[0]), uint32(b[1]), uint32(b[2]), uint32(b[3])), 1))
			}
		}
		s := statefiles.StatsOf(&st.Counters)
		for col, v := range []uint64{s.BecomeMaster, s.AdvertRcvd, s.AdvertIntervalErr, s.AuthFailure, s.IPTTLErr, s.PriZeroRcvd,
			s.PriZeroSent, s.InvalidTypeRcvd, s.AddrListErr, s.InvalidAuthType, s.AuthTypeMismatch, s.PacketLenErr} {
			vs = append(vs, agentx.Counter(stats.Append(uint32(col+1)).Append(ix...), v))
		}
	}
	vs = append(vs,
		agentx.Counter(VRRPv2MIB.Append(2, 1, 0), checksum),
		agentx.Counter(VRRPv2MIB.Append(2, 2, 0), version),
		agentx.Counter(VRRPv2MIB.Append(2, 3, 0), vrid),
	)
	return vs
}

// upStamp is when the instance left INIT, on the subagent's clock.
func upStamp(st *vrrp.InstanceStatus, o Options) uint64 {
	if st.UpSince.IsZero() || o.Start.IsZero() {
		return 0
	}
	return ticks(st.UpSince.Sub(o.Start))
}

// newMasterReason is RFC 6527's reason for the last change to MASTER:
// notMaster(0) if it never was, priority(1) for the address owner,
// masterNoResponse(3) otherwise (govs takes over from a lower priority
// master, too, when its master-down timer runs out: preempted(2) is not
// told apart).
func newMasterReason(st *vrrp.InstanceStatus) int {
	for i := len(st.Transitions) - 1; i >= 0; i-- {
		if t := st.Transitions[i]; t.To == vrrp.StateMaster {
			if strings.Contains(t.Reason, "priority 255") {
				return 1
			}
			return 3
		}
	}
	if st.Counters.BecameMaster > 0 {
		return 3 // its transition to MASTER left the history
	}
	return 0
}

// rfc6527Vars is VRRPv3-MIB (RFC 6527): every instance.
func rfc6527Vars(in *statefiles.Input, o Options, links map[string]net.Interface) []agentx.Var {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	oper, assoc, stats := VRRPv3MIB.Append(1, 1, 1, 1), VRRPv3MIB.Append(1, 1, 2, 1), VRRPv3MIB.Append(1, 2, 5, 1)
	var vs []agentx.Var
	var checksum, version, vrid uint64
	for i := range in.VRRP.Instances {
		st := &in.VRRP.Instances[i]
		cfg := st.Config()
		l, ok := instanceLink(&cfg, links)
		if !ok {
			continue
		}
		d := st.Counters.Dropped
		checksum, version, vrid = checksum+d[vrrp.DropChecksum], version+d[vrrp.DropVersion], vrid+d[vrrp.DropVRID]
		family := uint32(1)
		if cfg.IsIPv6() {
			family = 2
		}
		ix := []uint32{uint32(l.index), uint32(cfg.VRID), family}
		var master []byte
		switch {
		case st.State == vrrp.StateMaster && st.LocalAddr.IsValid():
			master = st.LocalAddr.AsSlice()
		case st.MasterAddr.IsValid():
			master = st.MasterAddr.AsSlice()
		}
		primary := []byte{}
		if st.LocalAddr.IsValid() {
			primary = st.LocalAddr.AsSlice()
		}
		if master == nil {
			master = make([]byte, len(primary))
		}
		vs = append(vs,
			agentx.Bytes(oper.Append(3).Append(ix...), master),
			agentx.Bytes(oper.Append(4).Append(ix...), primary),
			agentx.Bytes(oper.Append(5).Append(ix...), l.mac),
			agentx.Integer(oper.Append(6).Append(ix...), rfcState(st.State)),
			agentx.Gauge(oper.Append(7).Append(ix...), uint64(cfg.Priority)),
			agentx.Integer(oper.Append(8).Append(ix...), len(cfg.VirtualIPs)),
			agentx.Integer(oper.Append(9).Append(ix...), int(cfg.AdvertInterval/(10*time.Millisecond))),
			agentx.Integer(oper.Append(10).Append(ix...), truth(!cfg.NoPreempt)),
			agentx.Integer(oper.Append(11).Append(ix...), truth(!cfg.NoAccept)),
			agentx.TimeTicks(oper.Append(12).Append(ix...), upTime(st, now)),
			agentx.Integer(oper.Append(13).Append(ix...), 1), // active
		)
		for _, v := range cfg.VirtualIPs {
			name := assoc.Append(2).Append(ix...)
			for _, b := range v.Prefix.Addr().AsSlice() {
				name = append(name, uint32(b))
			}
			vs = append(vs, agentx.Integer(name, 1))
		}
		s := statefiles.StatsOf(&st.Counters)
		vs = append(vs,
			agentx.Counter(stats.Append(1).Append(ix...), s.BecomeMaster),
			agentx.Integer(stats.Append(2).Append(ix...), newMasterReason(st)),
			agentx.Counter64(stats.Append(3).Append(ix...), s.AdvertRcvd),
			agentx.Counter64(stats.Append(4).Append(ix...), s.AdvertIntervalErr),
			agentx.Counter64(stats.Append(5).Append(ix...), s.IPTTLErr),
			agentx.Integer(stats.Append(6).Append(ix...), 0), // no protocol error
			agentx.Counter64(stats.Append(7).Append(ix...), s.PriZeroRcvd),
			agentx.Counter64(stats.Append(8).Append(ix...), s.PriZeroSent),
			agentx.Counter64(stats.Append(9).Append(ix...), s.InvalidTypeRcvd),
			agentx.Counter64(stats.Append(10).Append(ix...), s.AddrListErr),
			agentx.Counter64(stats.Append(11).Append(ix...), s.PacketLenErr),
			agentx.TimeTicks(stats.Append(12).Append(ix...), 0),
			agentx.Gauge(stats.Append(13).Append(ix...), uint64(cfg.AdvertInterval.Milliseconds())),
		)
	}
	vs = append(vs,
		agentx.Counter64(VRRPv3MIB.Append(1, 2, 1, 0), checksum),
		agentx.Counter64(VRRPv3MIB.Append(1, 2, 2, 0), version),
		agentx.Counter64(VRRPv3MIB.Append(1, 2, 3, 0), vrid),
		agentx.TimeTicks(VRRPv3MIB.Append(1, 2, 4, 0), 0),
	)
	return vs
}

// upTime is how long the instance has been out of INIT.
func upTime(st *vrrp.InstanceStatus, now time.Time) uint64 {
	if st.UpSince.IsZero() {
		return 0
	}
	return ticks(now.Sub(st.UpSince))
}
