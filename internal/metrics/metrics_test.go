package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bfd"
	"github.com/govs/govs/internal/dataplane"
)

func TestMetrics(t *testing.T) {
	st := &api.State{
		ConfigLoaded: time.Unix(1700000000, 0),
		Services: []api.Service{{
			ID: "tcp/192.0.2.10:80", QuorumUp: true, Enabled: true,
			Stats: dataplane.Counters{Conns: 7, InPkts: 70, OutPkts: 60, InBytes: 700, OutBytes: 6000},
			RealServers: []api.RealServer{
				{Addr: "10.0.0.1:80", Weight: 3, Healthy: true, InPool: true, ActiveConns: 2, InactConns: 1, Stats: dataplane.Counters{Conns: 5}},
				{Addr: "10.0.0.2:80", Weight: 0, Healthy: false},
			},
		}},
		VRRP: []api.VRRP{{Name: "VI_1", State: "MASTER", Effective: 150, Counters: api.VRRPCounters{
			AdvertsSent: 40, AdvertsReceived: 3, BecameMaster: 1, AddressesRestored: 2, Dropped: map[string]uint64{"auth": 5},
			ReleasedMaster: 4, PriorityZeroSent: 6, PriorityZeroRcvd: 7, AddressListErrors: 8}}},
		Sync: &api.SyncDaemon{Role: "backup", MessagesReceived: 9, ConnsReceived: 300, ConnsImported: 290, ConnsNotTaken: 10, Malformed: 1},
		BGP: &api.BGP{LocalAS: 65001, Routes: []string{"192.0.2.10/32"}, Neighbors: []api.BGPNeighbor{
			{Address: "10.0.0.1", State: "established", Advertised: 1, BFD: "up"}, {Address: "10.0.0.2", State: "active"}}},
		BFD: []bfd.Status{{Name: "ROUTER", Peer: netip.MustParseAddr("10.0.0.254"), State: "Up", Ups: 2}, {Name: "PEER", Peer: netip.MustParseAddr("10.0.0.2"), State: "Down"}},
	}
	h := Handler(func(context.Context) (*api.State, error) { return st, nil }, fakeExits{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`govs_service_connections_total{service="tcp/192.0.2.10:80"} 7`,
		`govs_service_bytes_total{direction="out",service="tcp/192.0.2.10:80"} 6000`,
		`govs_realserver_connections_total{server="10.0.0.1:80",service="tcp/192.0.2.10:80"} 5`,
		`govs_realserver_active_connections{server="10.0.0.1:80",service="tcp/192.0.2.10:80"} 2`,
		`govs_realserver_healthy{server="10.0.0.2:80",service="tcp/192.0.2.10:80"} 0`,
		`govs_realserver_weight{server="10.0.0.1:80",service="tcp/192.0.2.10:80"} 3`,
		`govs_vrrp_state{instance="VI_1",state="MASTER"} 1`,
		`govs_vrrp_state{instance="VI_1",state="BACKUP"} 0`,
		`govs_vrrp_effective_priority{instance="VI_1"} 150`,
		`govs_vrrp_adverts_sent_total{instance="VI_1"} 40`,
		`govs_vrrp_adverts_received_total{instance="VI_1"} 3`,
		`govs_vrrp_send_errors_total{instance="VI_1"} 0`,
		`govs_vrrp_became_master_total{instance="VI_1"} 1`,
		`govs_vrrp_addresses_restored_total{instance="VI_1"} 2`,
		`govs_vrrp_adverts_dropped_total{instance="VI_1",reason="auth"} 5`,
		`govs_vrrp_released_master_total{instance="VI_1"} 4`,
		`govs_vrrp_priority_zero_adverts_total{direction="sent",instance="VI_1"} 6`,
		`govs_vrrp_priority_zero_adverts_total{direction="received",instance="VI_1"} 7`,
		`govs_vrrp_address_list_errors_total{instance="VI_1"} 8`,
		`govs_sync_role{role="backup"} 1`,
		`govs_sync_role{role="master"} 0`,
		`govs_sync_messages_total{direction="received"} 9`,
		`govs_sync_connections_total{what="imported"} 290`,
		`govs_sync_connections_total{what="not_taken"} 10`,
		`govs_sync_errors_total{kind="malformed"} 1`,
		`govs_bgp_announced_routes 1`,
		`govs_bfd_session_up{bfd_instance="ROUTER",neighbor="10.0.0.254"} 1`,
		`govs_bfd_session_up{bfd_instance="PEER",neighbor="10.0.0.2"} 0`,
		`govs_bfd_session_ups_total{bfd_instance="ROUTER",neighbor="10.0.0.254"} 2`,
		`govs_bgp_neighbor_up{neighbor="10.0.0.1"} 1`,
		`govs_bgp_neighbor_up{neighbor="10.0.0.2"} 0`,
		`govs_bgp_neighbor_advertised_routes{neighbor="10.0.0.1"} 1`,
		`govs_bgp_neighbor_bfd_up{neighbor="10.0.0.1"} 1`,
		`govs_config_last_reload_failed 0`,
		`govs_up 1`,
		`govs_dataplane_exits_total{reason="tx"} 42`,
		`govs_dataplane_events_total{event="snat_pool_exhausted"} 1`,
		`govs_snat_pool_exhausted_total{service="udp/192.0.2.10:53"} 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %q", want)
		}
	}
	// A failing state read is an error for the scrape, not a crash.
	h = Handler(func(context.Context) (*api.State, error) { return nil, errors.New("boom") }, nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("failing scrape: %d %s", rec.Code, rec.Body.String())
	}
}

type fakeExits struct{}

func (fakeExits) Exits() (map[string]uint64, error) {
	return map[string]uint64{"tx": 42, "pass": 7}, nil
}
func (fakeExits) Events() (map[string]uint64, error) {
	return map[string]uint64{"snat_pool_exhausted": 1}, nil
}

func (fakeExits) SNATDropped() (map[dataplane.ServiceKey]uint64, error) {
	return map[dataplane.ServiceKey]uint64{{Proto: dataplane.UDP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 53}: 3}, nil
}
