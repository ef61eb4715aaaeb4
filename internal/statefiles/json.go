package statefiles

import (
	"bytes"
	"encoding/json"
	"io"
	"time"

	"github.com/govs/govs/internal/vrrp"
)

// jsonData is an instance's "data" object in keepalived.json: keepalived's
// keys in its order (a Go struct keeps it), its types (0/1 for some flags,
// booleans for others, states as numbers 0 INIT, 1 BACKUP, 2 MASTER,
// 3 FAULT), its empty lists left out.
type jsonData struct {
	IName                string      `json:"iname"`
	DontTrackPrimary     int         `json:"dont_track_primary"`
	SkipCheckAdvAddr     int         `json:"skip_check_adv_addr"`
	StrictMode           int         `json:"strict_mode"`
	VMACIfname           string      `json:"vmac_ifname"`
	IfpIfname            string      `json:"ifp_ifname,omitempty"`
	MasterPriority       int         `json:"master_priority"`
	LastTransition       epochNumber `json:"last_transition"`
	GarpDelay            int         `json:"garp_delay"`
	GarpRefresh          int         `json:"garp_refresh"`
	GarpRep              int         `json:"garp_rep"`
	GarpRefreshRep       int         `json:"garp_refresh_rep"`
	GarpLowerPrioDelay   int         `json:"garp_lower_prio_delay"`
	GarpLowerPrioRep     int         `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert    int         `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert int         `json:"higher_prio_send_advert"`
	VRID                 int         `json:"vrid"`
	BasePriority         int         `json:"base_priority"`
	EffectivePriority    int         `json:"effective_priority"`
	VIPSet               bool        `json:"vipset"`
	PromoteSecondaries   bool        `json:"promote_secondaries"`
	AdverInt             float64     `json:"adver_int"`
	MasterAdverInt       float64     `json:"master_adver_int"`
	Accept               int         `json:"accept"`
	NoPreempt            bool        `json:"nopreempt"`
	PreemptDelay         int         `json:"preempt_delay"`
	State                int         `json:"state"`
	WantState            int         `json:"wantstate"`
	Version              int         `json:"version"`
	SMTPAlert            bool        `json:"smtp_alert"`
	NotifyDeleted        bool        `json:"notify_deleted"`
	ScriptBackup         string      `json:"script_backup,omitempty"`
	ScriptMaster         string      `json:"script_master,omitempty"`
	ScriptFault          string      `json:"script_fault,omitempty"`
	ScriptStop           string      `json:"script_stop,omitempty"`
	Script               string      `json:"script,omitempty"`
	ScriptMasterRxLower  string      `json:"script_master_rx_lower_pri,omitempty"`
	VIPs                 []string    `json:"vips,omitempty"`
	EVIPs                []string    `json:"evips,omitempty"`
	TrackIfp             []string    `json:"track_ifp,omitempty"`
	TrackScript          []string    `json:"track_script,omitempty"`
	TrackProcess         []string    `json:"track_process,omitempty"`
	AuthType             int         `json:"auth_type"`
	AuthData             string      `json:"auth_data,omitempty"`
}

type jsonInstance struct {
	Data  jsonData `json:"data"`
	Stats Stats    `json:"stats"`
}

// epochNumber is a time as keepalived writes it in JSON: seconds with
// six decimals.
type epochNumber time.Time

func (e epochNumber) MarshalJSON() ([]byte, error) { return []byte(epoch(time.Time(e))), nil }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WriteJSON writes keepalived.json: the instances with their counters
// since the last clear, as keepalived's json_version 1 (a list) or 2 (an
// object whose "vrrp" is that list), on one line.
func WriteJSON(out io.Writer, in *Input, c *Clearer, version int) error {
	list := make([]jsonInstance, 0, len(in.VRRP.Instances))
	for i := range in.VRRP.Instances {
		st := &in.VRRP.Instances[i]
		list = append(list, jsonInstance{Data: jsonDataOf(st, in), Stats: c.of(st)})
	}
	var doc any = list
	if version == 2 {
		doc = struct {
			VRRP []jsonInstance `json:"vrrp"`
		}{list}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keepalived writes <, > and & as they are
	if err := enc.Encode(doc); err != nil {
		return err
	}
	// keepalived escapes "/" (which JSON allows: "\/"); it is only ever
	// in strings
	_, err := out.Write(bytes.ReplaceAll(buf.Bytes(), []byte("/"), []byte(`\/`)))
	return err
}

func jsonDataOf(st *vrrp.InstanceStatus, in *Input) jsonData {
	cfg := st.Config()
	strict, skipCheck := false, false
	if in.Config != nil {
		g := &in.Config.Global
		for _, vi := range in.Config.VRRPInstances {
			if vi.Name == cfg.Name {
				strict = g.StrictMode(vi)
				skipCheck = g.VRRPDefaults.SkipCheckAdvAddr
				if vi.SkipCheckAdvAddr != nil {
					skipCheck = *vi.SkipCheckAdvAddr
				}
			}
		}
	}
	adver := cfg.AdvertInterval.Seconds()
	d := jsonData{
		IName:                st.Name,
		DontTrackPrimary:     b2i(cfg.DontTrackPrimary),
		StrictMode:           b2i(strict),
		VMACIfname:           cfg.VMAC,
		IfpIfname:            cfg.Interface,
		LastTransition:       epochNumber(lastTransition(st)),
		GarpDelay:            secs(cfg.GARPMasterDelay),
		GarpRefresh:          secs(cfg.GARPMasterRefresh),
		GarpRep:              cfg.GARPMasterRepeat,
		GarpRefreshRep:       cfg.GARPMasterRefreshRepeat,
		GarpLowerPrioDelay:   secs(cfg.GARPLowerPrioDelay),
		GarpLowerPrioRep:     cfg.GARPLowerPrioRepeat,
		LowerPrioNoAdvert:    b2i(cfg.LowerPrioNoAdvert),
		HigherPrioSendAdvert: b2i(cfg.HigherPrioSendAdvert),
		VRID:                 cfg.VRID,
		BasePriority:         cfg.Priority,
		EffectivePriority:    st.EffectivePriority,
		VIPSet:               st.State == vrrp.StateMaster,
		AdverInt:             adver,
		MasterAdverInt:       adver,
		Accept:               b2i(!cfg.NoAccept),
		NoPreempt:            cfg.NoPreempt,
		PreemptDelay:         secs(cfg.PreemptDelay),
		State:                StateNumber(ShownState(st)),
		WantState:            StateNumber(WantState(st)),
		Version:              cfg.Version,
		SMTPAlert:            cfg.SMTPAlert,
		ScriptBackup:         quoteIf(cfg.Notify.Backup),
		ScriptMaster:         quoteIf(cfg.Notify.Master),
		ScriptFault:          quoteIf(cfg.Notify.Fault),
		ScriptStop:           quoteIf(cfg.Notify.Stop),
		Script:               quoteIf(cfg.Notify.Notify),
		ScriptMasterRxLower:  quoteIf(cfg.Notify.MasterRxLowerPri),
		NotifyDeleted:        cfg.Notify.Deleted != "",
		PromoteSecondaries:   cfg.PromoteSecondaries,
	}
	if st.State == vrrp.StateBackup {
		d.MasterPriority = st.MasterPriority
		if st.MasterAdvertInterval > 0 {
			d.MasterAdverInt = st.MasterAdvertInterval.Seconds()
		}
	}
	d.SkipCheckAdvAddr = b2i(skipCheck)
	set := st.State == vrrp.StateMaster
	for _, v := range cfg.VirtualIPs {
		d.VIPs = append(d.VIPs, vipLine(v, &cfg, set))
	}
	for _, v := range cfg.VirtualIPsExcluded {
		d.EVIPs = append(d.EVIPs, vipLine(v, &cfg, set))
	}
	for _, t := range cfg.ListedTrackInterfaces() {
		d.TrackIfp = append(d.TrackIfp, t.Name)
	}
	for _, t := range cfg.TrackScripts {
		for _, s := range in.VRRP.Scripts {
			if s.Name == t.Name {
				d.TrackScript = append(d.TrackScript, QuoteCommand(s.Script))
			}
		}
	}
	for _, t := range cfg.TrackProcesses {
		d.TrackProcess = append(d.TrackProcess, t.Name)
	}
	if cfg.Version == 2 {
		switch {
		case cfg.AuthAH:
			d.AuthType, d.AuthData = 2, cfg.AuthPass
		case cfg.AuthPass != "":
			d.AuthType, d.AuthData = 1, cfg.AuthPass
		}
	}
	return d
}

func quoteIf(cmd string) string {
	if cmd == "" {
		return ""
	}
	return QuoteCommand(cmd)
}

// Signal numbers keepalived uses (keepalived --signum), on Linux with
// glibc (SIGRTMIN 34, SIGRTMAX 64).
var signums = map[string]int{
	"STOP":        15,
	"RELOAD":      1,
	"DATA":        10,
	"STATS":       12,
	"STATS_CLEAR": 63,
	"JSON":        36,
}

// Signum is keepalived --signum NAME: the number of the signal that
// makes govs (as keepalived) do NAME.
func Signum(name string) (int, bool) {
	n, ok := signums[name]
	return n, ok
}

// SignumNames lists the names Signum knows.
func SignumNames() []string {
	return []string{"STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON"}
}
