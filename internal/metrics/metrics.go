// Package metrics exports the director's state as Prometheus metrics. A
// Collector reads the state at scrape time from the same source as the API
// (no second copy of state); labels are bounded by configuration
// (service, real server, VRRP instance), never by client address.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane"
)

// StateFunc returns the current state (the director's State method).
type StateFunc func(ctx context.Context) (*api.State, error)

// Collector turns the state into metrics on every scrape.
type Collector struct {
	state StateFunc

	up, scrapeErr                                    *prometheus.Desc
	svcConns, svcPkts, svcBytes, svcQuorum, svcSorry *prometheus.Desc
	svcEnabled                                       *prometheus.Desc
	rsConns, rsPkts, rsBytes, rsActive, rsInact      *prometheus.Desc
	rsPersist, rsWeight, rsHealthy, rsInPool         *prometheus.Desc
	reloadFailed, configLoaded                       *prometheus.Desc
	vrrpState, vrrpPrio                              *prometheus.Desc
	vrrpSent, vrrpRecv, vrrpSendErr, vrrpMaster      *prometheus.Desc
	vrrpRestored, vrrpRoutesRestored, vrrpDropped    *prometheus.Desc
	vrrpReleased, vrrpPrioZero, vrrpAddrList         *prometheus.Desc
	syncRole, syncMsgs, syncConns, syncErrs          *prometheus.Desc
	bgpUp, bgpAdvertised, bgpRoutes, bgpBFDUp        *prometheus.Desc
	bfdUp, bfdUps                                    *prometheus.Desc
}

// NewCollector returns a collector reading state from fn.
func NewCollector(fn StateFunc) *Collector {
	svc := []string{"service"}
	rs := []string{"service", "server"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		state:              fn,
		up:                 d("govs_up", "1 while the director answers."),
		scrapeErr:          d("govs_scrape_errors_total", "Always 0; set to 1 when the state could not be read during this scrape."),
		svcConns:           d("govs_service_connections_total", "Connections scheduled by the virtual service.", svc...),
		svcPkts:            d("govs_service_packets_total", "Packets forwarded by the virtual service, by direction (in: client to server).", "service", "direction"),
		svcBytes:           d("govs_service_bytes_total", "Bytes forwarded by the virtual service, by direction.", "service", "direction"),
		svcQuorum:          d("govs_service_quorum_up", "1 when the live weight of the service's real servers meets its quorum.", svc...),
		svcSorry:           d("govs_service_sorry_active", "1 when the sorry server takes the service's traffic.", svc...),
		svcEnabled:         d("govs_service_enabled", "0 when the service was disabled at run time.", svc...),
		rsConns:            d("govs_realserver_connections_total", "Connections scheduled to the real server.", rs...),
		rsPkts:             d("govs_realserver_packets_total", "Packets forwarded to/from the real server.", "service", "server", "direction"),
		rsBytes:            d("govs_realserver_bytes_total", "Bytes forwarded to/from the real server.", "service", "server", "direction"),
		rsActive:           d("govs_realserver_active_connections", "Active connections (IPVS ActiveConn).", rs...),
		rsInact:            d("govs_realserver_inactive_connections", "Inactive connections (IPVS InActConn).", rs...),
		rsPersist:          d("govs_realserver_persistent_connections", "Persistence templates pointing at the real server.", rs...),
		rsWeight:           d("govs_realserver_weight", "Weight in the dataplane now (0 = drained or quiesced).", rs...),
		rsHealthy:          d("govs_realserver_healthy", "1 when the real server's health checks pass.", rs...),
		rsInPool:           d("govs_realserver_in_pool", "1 when the real server is in the dataplane.", rs...),
		reloadFailed:       d("govs_config_last_reload_failed", "1 when the last reload was refused (the previous configuration still runs)."),
		configLoaded:       d("govs_config_loaded_timestamp_seconds", "Time the running configuration was loaded."),
		vrrpState:          d("govs_vrrp_state", "1 for the current state of the VRRP instance.", "instance", "state"),
		vrrpPrio:           d("govs_vrrp_effective_priority", "Effective priority of the VRRP instance.", "instance"),
		vrrpSent:           d("govs_vrrp_adverts_sent_total", "VRRP adverts the instance sent.", "instance"),
		vrrpRecv:           d("govs_vrrp_adverts_received_total", "VRRP adverts the instance received that passed its checks (the others count in govs_vrrp_adverts_dropped_total).", "instance"),
		vrrpSendErr:        d("govs_vrrp_send_errors_total", "VRRP adverts the instance could not send.", "instance"),
		vrrpMaster:         d("govs_vrrp_became_master_total", "Times the instance became MASTER.", "instance"),
		vrrpRestored:       d("govs_vrrp_addresses_restored_total", "Virtual addresses the MASTER put back after someone else deleted them.", "instance"),
		vrrpRoutesRestored: d("govs_vrrp_routes_restored_total", "Virtual routes and rules the MASTER put back after they went.", "instance"),
		vrrpDropped:        d("govs_vrrp_adverts_dropped_total", "VRRP adverts the instance dropped, by reason.", "instance", "reason"),
		vrrpReleased:       d("govs_vrrp_released_master_total", "Times the instance left MASTER for BACKUP or FAULT.", "instance"),
		vrrpPrioZero:       d("govs_vrrp_priority_zero_adverts_total", "VRRP adverts of priority 0 (a MASTER resigning), by direction (sent, received).", "instance", "direction"),
		vrrpAddrList:       d("govs_vrrp_address_list_errors_total", "Adverts the instance received whose addresses are not its virtual addresses (taken all the same).", "instance"),
		bgpUp:              d("govs_bgp_neighbor_up", "1 when the BGP session with the neighbor is established.", "neighbor"),
		bgpAdvertised:      d("govs_bgp_neighbor_advertised_routes", "Routes advertised to the BGP neighbor.", "neighbor"),
		bgpBFDUp:           d("govs_bgp_neighbor_bfd_up", "1 when the BFD session with the neighbor is up (neighbors with bfd only).", "neighbor"),
		bgpRoutes:          d("govs_bgp_announced_routes", "Host routes of virtual addresses announced over BGP (0 while stopping or with no virtual service up)."),
		bfdUp:              d("govs_bfd_session_up", "1 when the BFD session of the bfd_instance is Up.", "bfd_instance", "neighbor"),
		bfdUps:             d("govs_bfd_session_ups_total", "Times the BFD session of the bfd_instance came Up since govs started (or the session was last restarted).", "bfd_instance", "neighbor"),
		syncRole:           d("govs_sync_role", "1 for each role the connection-sync daemon has now (master: sends, backup: receives).", "role"),
		syncMsgs:           d("govs_sync_messages_total", "Connection-sync messages, by direction (sent, received).", "direction"),
		syncConns:          d("govs_sync_connections_total", "Connections in sync messages: sent, received, imported (taken into the dataplane), not_taken.", "what"),
		syncErrs:           d("govs_sync_errors_total", "Connection-sync failures: send errors, malformed messages, messages of another sync ID, messages the kernel dropped (receive buffer full).", "kind"),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.svcConns, c.svcPkts, c.svcBytes, c.svcQuorum, c.svcSorry, c.svcEnabled,
		c.rsConns, c.rsPkts, c.rsBytes, c.rsActive, c.rsInact, c.rsPersist, c.rsWeight, c.rsHealthy, c.rsInPool,
		c.reloadFailed, c.configLoaded, c.vrrpState, c.vrrpPrio,
		c.vrrpSent, c.vrrpRecv, c.vrrpSendErr, c.vrrpMaster, c.vrrpRestored, c.vrrpRoutesRestored, c.vrrpDropped,
		c.vrrpReleased, c.vrrpPrioZero, c.vrrpAddrList, c.syncRole, c.syncMsgs, c.syncConns, c.syncErrs, c.bgpUp, c.bgpAdvertised, c.bgpRoutes, c.bgpBFDUp, c.bfdUp, c.bfdUps} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect reads the state and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.state(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.up, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.reloadFailed, prometheus.GaugeValue, b2f(st.LastReloadError != ""))
	if !st.ConfigLoaded.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.configLoaded, prometheus.GaugeValue, float64(st.ConfigLoaded.UnixNano())/1e9)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range st.Services {
		counter(c.svcConns, s.Stats.Conns, s.ID)
		counter(c.svcPkts, s.Stats.InPkts, s.ID, "in")
		counter(c.svcPkts, s.Stats.OutPkts, s.ID, "out")
		counter(c.svcBytes, s.Stats.InBytes, s.ID, "in")
		counter(c.svcBytes, s.Stats.OutBytes, s.ID, "out")
		gauge(c.svcQuorum, b2f(s.QuorumUp), s.ID)
		gauge(c.svcSorry, b2f(s.SorryActive), s.ID)
		gauge(c.svcEnabled, b2f(s.Enabled), s.ID)
		for _, r := range s.RealServers {
			counter(c.rsConns, r.Stats.Conns, s.ID, r.Addr)
			counter(c.rsPkts, r.Stats.InPkts, s.ID, r.Addr, "in")
			counter(c.rsPkts, r.Stats.OutPkts, s.ID, r.Addr, "out")
			counter(c.rsBytes, r.Stats.InBytes, s.ID, r.Addr, "in")
			counter(c.rsBytes, r.Stats.OutBytes, s.ID, r.Addr, "out")
			gauge(c.rsActive, float64(r.ActiveConns), s.ID, r.Addr)
			gauge(c.rsInact, float64(r.InactConns), s.ID, r.Addr)
			gauge(c.rsPersist, float64(r.PersistConns), s.ID, r.Addr)
			gauge(c.rsWeight, float64(r.Weight), s.ID, r.Addr)
			gauge(c.rsHealthy, b2f(r.Healthy), s.ID, r.Addr)
			gauge(c.rsInPool, b2f(r.InPool), s.ID, r.Addr)
		}
	}
	for _, v := range st.VRRP {
		for _, state := range []string{"INIT", "BACKUP", "MASTER", "FAULT"} {
			gauge(c.vrrpState, b2f(v.State == state), v.Name, state)
		}
		gauge(c.vrrpPrio, float64(v.Effective), v.Name)
		counter(c.vrrpSent, v.Counters.AdvertsSent, v.Name)
		counter(c.vrrpRecv, v.Counters.AdvertsReceived, v.Name)
		counter(c.vrrpSendErr, v.Counters.SendErrors, v.Name)
		counter(c.vrrpMaster, v.Counters.BecameMaster, v.Name)
		counter(c.vrrpRestored, v.Counters.AddressesRestored, v.Name)
		counter(c.vrrpRoutesRestored, v.Counters.RoutesRestored, v.Name)
		counter(c.vrrpReleased, v.Counters.ReleasedMaster, v.Name)
		counter(c.vrrpPrioZero, v.Counters.PriorityZeroSent, v.Name, "sent")
		counter(c.vrrpPrioZero, v.Counters.PriorityZeroRcvd, v.Name, "received")
		counter(c.vrrpAddrList, v.Counters.AddressListErrors, v.Name)
		for r, n := range v.Counters.Dropped {
			counter(c.vrrpDropped, n, v.Name, r)
		}
	}
	if s := st.Sync; s != nil {
		gauge(c.syncRole, b2f(strings.Contains(s.Role, "master")), "master")
		gauge(c.syncRole, b2f(strings.Contains(s.Role, "backup")), "backup")
		counter(c.syncMsgs, s.MessagesSent, "sent")
		counter(c.syncMsgs, s.MessagesReceived, "received")
		counter(c.syncConns, s.ConnsSent, "sent")
		counter(c.syncConns, s.ConnsReceived, "received")
		counter(c.syncConns, s.ConnsImported, "imported")
		counter(c.syncConns, s.ConnsNotTaken, "not_taken")
		counter(c.syncErrs, s.SendErrors, "send")
		counter(c.syncErrs, s.Malformed, "malformed")
		counter(c.syncErrs, s.OtherSyncID, "other_sync_id")
		counter(c.syncErrs, s.Dropped, "dropped")
	}
	if b := st.BGP; b != nil {
		gauge(c.bgpRoutes, float64(len(b.Routes)))
		for _, n := range b.Neighbors {
			gauge(c.bgpUp, b2f(n.State == "established"), n.Address)
			gauge(c.bgpAdvertised, float64(n.Advertised), n.Address)
			if n.BFD != "" {
				gauge(c.bgpBFDUp, b2f(n.BFD == "up"), n.Address)
			}
		}
	}
	for _, b := range st.BFD {
		gauge(c.bfdUp, b2f(b.State == "Up"), b.Name, b.Peer.String())
		counter(c.bfdUps, b.Ups, b.Name, b.Peer.String())
	}
}

// Handler returns the /metrics handler of a registry holding the
// collector plus Go runtime and process metrics. The registry is the
// daemon's own (nothing is registered globally). A dataplane that counts
// its exits (the XDP program counts every exit by reason) is exported
// too when dp implements ExitCounter.
func Handler(fn StateFunc, dp any) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(fn), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if ec, ok := dp.(ExitCounter); ok {
		reg.MustRegister(exitCollector{ec})
	}
	if sd, ok := dp.(SNATDropper); ok {
		reg.MustRegister(snatCollector{sd})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ExitCounter is a dataplane that counts why packets left its program
// (a fixed set of reasons) and notable events (e.g. SNAT pool exhausted).
type ExitCounter interface {
	Exits() (map[string]uint64, error)
	Events() (map[string]uint64, error)
}

var (
	exitDesc  = prometheus.NewDesc("govs_dataplane_exits_total", "Packets by the reason they left the dataplane program.", []string{"reason"}, nil)
	eventDesc = prometheus.NewDesc("govs_dataplane_events_total", "Dataplane events (e.g. source-NAT pool exhausted).", []string{"event"}, nil)
)

type exitCollector struct{ ec ExitCounter }

func (c exitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- exitDesc
	ch <- eventDesc
}

func (c exitCollector) Collect(ch chan<- prometheus.Metric) {
	if m, err := c.ec.Exits(); err == nil {
		for k, v := range m {
			ch <- prometheus.MustNewConstMetric(exitDesc, prometheus.CounterValue, float64(v), k)
		}
	} else {
		ch <- prometheus.NewInvalidMetric(exitDesc, err)
	}
	if m, err := c.ec.Events(); err == nil {
		for k, v := range m {
			ch <- prometheus.MustNewConstMetric(eventDesc, prometheus.CounterValue, float64(v), k)
		}
	}
}

// SNATDropper is a dataplane that counts, per service, new connections it
// dropped because the service's source-NAT pool had no free address and
// port.
type SNATDropper interface {
	SNATDropped() (map[dataplane.ServiceKey]uint64, error)
}

var snatDesc = prometheus.NewDesc("govs_snat_pool_exhausted_total",
	"New connections dropped because the service's source-NAT pool had no free address and port.", []string{"service"}, nil)

type snatCollector struct{ sd SNATDropper }

func (c snatCollector) Describe(ch chan<- *prometheus.Desc) { ch <- snatDesc }

func (c snatCollector) Collect(ch chan<- prometheus.Metric) {
	m, err := c.sd.SNATDropped()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(snatDesc, err)
		return
	}
	for k, v := range m {
		ch <- prometheus.MustNewConstMetric(snatDesc, prometheus.CounterValue, float64(v), api.ServiceID(k))
	}
}
