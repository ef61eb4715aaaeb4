package vrrp

import (
	"sync"
	"time"
)

// LinkDelay is interface_up_down_delays for one interface: a link that
// goes down counts once it stayed down Down, one that comes up once it
// stayed up Up; a change back within the delay is not seen at all.
type LinkDelay struct {
	Down time.Duration `json:"down"`
	Up   time.Duration `json:"up,omitempty"`
}

// debouncer delays link changes as LinkDelays say before they reach the
// instances (send). A change back to the state last sent cancels a
// pending one: the flap is absorbed.
type debouncer struct {
	// sendMu is held from a state's update to its send, so that two
	// changes reach the instances in the order they were decided
	sendMu  sync.Mutex
	mu      sync.Mutex
	delays  map[string]LinkDelay
	sent    map[string]bool // the state last sent, by interface
	pending map[string]*time.Timer
	send    func(name string, up bool)
}

func newDebouncer(delays map[string]LinkDelay, send func(string, bool)) *debouncer {
	return &debouncer{delays: delays, sent: map[string]bool{}, pending: map[string]*time.Timer{}, send: send}
}

// setDelays puts new delays in force (a reload).
func (d *debouncer) setDelays(delays map[string]LinkDelay) {
	d.mu.Lock()
	d.delays = delays
	d.mu.Unlock()
}

// state is the link state last sent for name, if any.
func (d *debouncer) state(name string) (up, known bool) {
	if d == nil {
		return false, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	up, known = d.sent[name]
	return up, known
}

// seed records the state the instances start from (read at start), when
// none was sent yet.
func (d *debouncer) seed(name string, up bool) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sent[name]; !ok {
		d.sent[name] = up
	}
}

// event is a link change as the kernel reports it.
func (d *debouncer) event(name string, up bool) {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	d.mu.Lock()
	if t := d.pending[name]; t != nil {
		t.Stop()
		delete(d.pending, name)
	}
	last, known := d.sent[name]
	delay := d.delays[name].Down
	if up {
		delay = d.delays[name].Up
	}
	if known && last == up {
		d.mu.Unlock()
		return // back where it was: nothing happened
	}
	if delay <= 0 {
		d.sent[name] = up
		d.mu.Unlock()
		d.send(name, up)
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		d.sendMu.Lock()
		defer d.sendMu.Unlock()
		d.mu.Lock()
		if d.pending[name] != t {
			d.mu.Unlock()
			return // cancelled meanwhile
		}
		delete(d.pending, name)
		d.sent[name] = up
		d.mu.Unlock()
		d.send(name, up)
	})
	d.pending[name] = t
	d.mu.Unlock()
}

// stop cancels the pending changes.
func (d *debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, t := range d.pending {
		t.Stop()
		delete(d.pending, name)
	}
}
