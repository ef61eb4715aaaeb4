package vrrp

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestRiseFall: keepalived 2.2.7's counter (vrrp_script rise and fall):
// without init_fail the first result decides, whatever rise and fall
// (seen in a namespace: a script failing with fall 100 is failed after
// its first run); then rise successes or fall failures in a row change
// the state. (keepalived 2.2.7 starts every tracked script so,
// init_fail or not.)
func TestRiseFall(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    []bool
		want       []bool // state after each result
	}{
		{"fall 1", 1, 1, []bool{true, false, true}, []bool{true, false, true}},
		{"first failure decides", 2, 100, []bool{false}, []bool{false}},
		{"first success decides", 100, 1, []bool{true}, []bool{true}},
		{"fall 3", 2, 3, []bool{true, false, false, true, false, false, false}, []bool{true, true, true, true, true, true, false}},
		{"rise 2 after a failure", 2, 1, []bool{false, true, false, true, true}, []bool{false, false, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf := newRiseFall(tt.rise, tt.fall)
			var got []bool
			for _, r := range tt.results {
				rf.observe(r)
				got = append(got, rf.ok())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/bin/check", []string{"/bin/check"}},
		{"  /usr/bin/killall -0  haproxy ", []string{"/usr/bin/killall", "-0", "haproxy"}},
		{`/bin/sh -c "test -f /tmp/x && exit 0"`, []string{"/bin/sh", "-c", "test -f /tmp/x && exit 0"}},
		{`a 'b c' ""`, []string{"a", "b c", ""}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := splitCommand(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunScript(t *testing.T) {
	sh, err := os.Stat("/bin/sh")
	if err != nil || sh.IsDir() {
		t.Skip("no /bin/sh")
	}
	tests := []struct {
		script  string
		timeout time.Duration
		want    bool
	}{
		{"/bin/sh -c 'exit 0'", time.Second, true},
		{"/bin/sh -c 'exit 1'", time.Second, false},
		{"/nonexistent/script", time.Second, false},
		{"/bin/sh -c 'sleep 5'", 100 * time.Millisecond, false},
	}
	for _, tt := range tests {
		sc := ScriptConfig{Name: "x", Script: tt.script, Timeout: tt.timeout}.WithDefaults()
		start := time.Now()
		if got := runScript(context.Background(), &sc); got != tt.want {
			t.Errorf("%s: %v want %v", tt.script, got, tt.want)
		}
		if time.Since(start) > 3*time.Second {
			t.Errorf("%s: timeout not enforced", tt.script)
		}
	}
}

func TestReadTrackFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct {
		path string
		want int
	}{
		{write("a", "5\n"), 5},
		{write("b", "  -12 trailing words"), -12},
		// as keepalived reads them (strtol): an empty file and text
		// are 0; only a missing file takes the init value
		{write("c", ""), 0},
		{write("d", "garbage"), 0},
		{write("e", "0x1A"), 26},
		{filepath.Join(dir, "missing"), 7},
	}
	for _, tt := range tests {
		if got, ok := readTrackFile(tt.path, 7); got != tt.want || !ok {
			t.Errorf("%s: %d want %d", tt.path, got, tt.want)
		}
	}
}

func TestResolveTrackers(t *testing.T) {
	c := baseConfig()
	c.TrackInterfaces = []TrackInterface{{Name: "eth0"}, {Name: "eth1", Weight: -20}}
	c.TrackScripts = []TrackScript{{Name: "chk"}, {Name: "chk2", Weight: 5, WeightSet: true}}
	c.TrackFiles = []TrackFile{{Name: "f", Path: "/nonexistent", Weight: 3, Init: 2}}
	scripts := map[string]ScriptConfig{
		"chk":  {Name: "chk", Script: "x", Weight: -30, InitFail: true},
		"chk2": {Name: "chk2", Script: "x", Weight: 50},
	}
	got, err := ResolveTrackers(&c, scripts)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tracker{
		{Key: "interface:eth0", OK: true},
		{Key: "interface:eth1", Weight: -20, OK: true},
		{Key: "script:chk", Weight: -30, OK: true, Pending: true}, // (init_fail: no effect, as keepalived 2.2.7)
		{Key: "script:chk2", Weight: 5, OK: true, Pending: true},
		{Key: "file:f", Weight: 3, Valued: true, Value: 2},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// TestWatchFile: a track file's value is followed through a write, a
// file renamed into place and a removal (the init value then); a number
// outside 32 bits is ignored, the last value kept (keepalived 2.2.7's
// process_track_file).
func TestWatchFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	vals := make(chan int, 8)
	invalid := make(chan bool, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchFile(ctx, TrackFile{Name: "w", Path: path, Init: -3}, func(v int) { vals <- v }, func() { invalid <- true })
	}()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(100 * time.Millisecond) // watching
	expect := func(want int, what string) {
		t.Helper()
		start := time.Now()
		select {
		case v := <-vals:
			if v != want {
				t.Fatalf("%s: value %d, want %d", what, v, want)
			}
			t.Logf("%s: seen after %v", what, time.Since(start).Round(time.Millisecond))
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: no value %d within 3 s", what, want)
		}
	}
	if err := os.WriteFile(path, []byte("5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(5, "written")
	tmp := filepath.Join(dir, ".weight.new")
	if err := os.WriteFile(tmp, []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	expect(7, "renamed into place")
	if err := os.WriteFile(path, []byte("4294967296\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-invalid:
	case <-time.After(3 * time.Second):
		t.Fatal("a value outside 32 bits: not reported as invalid within 3 s")
	}
	// reported once, not at every read
	select {
	case <-invalid:
		t.Fatal("the same out-of-range value reported twice")
	case <-time.After(2500 * time.Millisecond):
	}
	if err := os.WriteFile(path, []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-vals:
		t.Fatalf("value %d emitted: the out-of-range number was taken (the file says 7 again, the last value)", v)
	case <-time.After(300 * time.Millisecond):
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	expect(-3, "removed")
}
