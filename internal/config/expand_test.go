package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vrrpSummary is "NAME PRIORITY VIP,VIP" per instance, one per line.
func vrrpSummary(c *Config) string {
	var b strings.Builder
	for _, v := range c.VRRPInstances {
		var vips []string
		for _, a := range v.VIPs {
			vips = append(vips, a.Prefix.String())
		}
		fmt.Fprintf(&b, "%s %d %s\n", v.Name, v.Priority, strings.Join(vips, ","))
	}
	return b.String()
}

// The examples of keepalived's manual (ADVANCED CONFIGURATION): values
// substituted when used, multiline definitions with conditional lines,
// and a definition used inside another.
func TestParameterSubstitutionAsKeepalived(t *testing.T) {
	src := `$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}
$ADDRESS_BASE_SUB=0
$INSTANCE= \
vrrp_instance VI_${NUM} { \
    # a comment line in a definition
    interface eth0.${NUM} \
    virtual_router_id ${NUM} \
    @high priority 130 \
    @low priority 120 \
    advert_int 1 \
    virtual_ipaddress { \
        ${ADDRESS_BASE}.${NUM}/32 \
    } \
}

$NUM=1
$INSTANCE
$ADDRESS_BASE_SUB=10
$NUM=2
$INSTANCE
`
	for _, tc := range []struct{ id, want string }{
		{"high", "VI_1 130 10.2.0.1/32\nVI_2 130 10.2.10.2/32\n"},
		{"low", "VI_1 120 10.2.0.1/32\nVI_2 120 10.2.10.2/32\n"},
	} {
		cfg, ds := Parse("t.conf", []byte(src), &ParseOptions{ConfigID: tc.id})
		if ds.HasErrors() {
			t.Fatalf("%s: %s", tc.id, diagStrings(ds))
		}
		if got := vrrpSummary(cfg); got != tc.want {
			t.Errorf("config-id %s:\n%s\nwant\n%s", tc.id, got, tc.want)
		}
		if cfg.VRRPInstances[1].Interface != "eth0.2" {
			t.Errorf("interface %q", cfg.VRRPInstances[1].Interface)
		}
	}

	// a multiline definition used in another, with definitions between
	// its uses (the manual's virtual servers, smaller)
	src = `$RS= \
real_server 192.168.${VS_NUM}.${RS_NUM} 80 { \
    weight 1 \

    MISC_CHECK { \
        misc_path "${_PWD}/vs.sh ${VS_NUM}.${RS_NUM}" \
    } \
}
$VS= \
virtual_server 10.0.${VS_NUM}.4 80 { \
    quorum 2 \
    $RS_NUM=1 \
    $RS \
    $RS_NUM=2 \
    $RS \
}
$VS_NUM=0
$VS
$VS_NUM=1
$VS
`
	cfg, ds := Parse("/etc/keepalived/t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	var got []string
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			got = append(got, fmt.Sprintf("%s>%s %s", vs.Addr, rs.Addr, rs.Checks[0].MiscPath))
		}
	}
	want := []string{
		"10.0.0.4>192.168.0.1 /etc/keepalived/vs.sh 0.1",
		"10.0.0.4>192.168.0.2 /etc/keepalived/vs.sh 0.2",
		"10.0.1.4>192.168.1.1 /etc/keepalived/vs.sh 1.1",
		"10.0.1.4>192.168.1.2 /etc/keepalived/vs.sh 1.2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("virtual servers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// each statement of a multiline value is its own (its position is
	// the line that used it)
	if vs := cfg.VirtualServers[1]; vs.Quorum != 2 || vs.Pos.Line != 20 {
		t.Errorf("virtual server at %s, quorum %d", vs.Pos, vs.Quorum)
	}
}

// keepalived replaces $NAME only before a blank or at the end of a line
// (else only ${NAME}); ${NAME} inside a word is one word.
func TestVariableForms(t *testing.T) {
	src := `$X=5
$P=150
vrrp_instance A {
    interface eth0
    virtual_router_id 9
    priority ${P}
    virtual_ipaddress {
        10.1.2.$X
        10.1.3.${X}/24
    }
    notify_master "/bin/echo $X"
    notify_backup "/bin/echo $X x"
}
`
	cfg, ds := Parse("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	v := cfg.VRRPInstances[0]
	if got := vrrpSummary(cfg); got != "A 150 10.1.2.5/32,10.1.3.5/24\n" {
		t.Errorf("got %q", got)
	}
	if v.Notify.Master.Cmd != "/bin/echo $X" || v.Notify.Backup.Cmd != "/bin/echo 5 x" {
		t.Errorf("notify %q / %q", v.Notify.Master.Cmd, v.Notify.Backup.Cmd)
	}
	_, ds = Parse("t.conf", []byte("$X=5\nvrrp_instance A {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  10.1.1.$X/32\n }\n}\n"), nil)
	if !strings.Contains(ds.Error(), `t.conf:6:3: error: virtual_ipaddress: "10.1.1.$X/32" is not an address`) {
		t.Errorf("$X before a non-blank: %s", diagStrings(ds))
	}
}

// ~SEQ, ~SEQx and ~LST, alone, combined and nested, as the manual's
// examples give them.
func TestSequences(t *testing.T) {
	src := `vrrp_instance A {
    interface eth0
    virtual_router_id 9
    virtual_ipaddress {
        ~SEQ(SUBNET, 0, 3) 10.0.${SUBNET}.1
        ~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,172) 192.${IP2}.${IP}.${IP1}
        ~SEQ(D, 3) 10.9.9.${D}
        ~SEQ(E, 4, 2) 10.8.8.${E}
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 10
    virtual_ipaddress {
        ~SEQx(AD2, 0x90, 0x10, 0xb0) ~SEQx(AD1, 0x12, -1, 0x11) fe81::10:${AD2}:${AD1}
    }
}
$S= \
vrrp_instance S${N} { \
    interface eth0 \
    virtual_router_id 2${N} \
    priority 1${N}0 \
}
~SEQ(N, 1, 3) $S
`
	cfg, ds := Parse("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	want := "A 100 10.0.0.1/32,10.0.1.1/32,10.0.2.1/32,10.0.3.1/32," +
		"192.168.10.1/32,192.170.10.1/32,192.172.10.1/32,192.168.20.4/32,192.170.20.4/32,192.172.20.4/32," +
		"10.9.9.1/32,10.9.9.2/32,10.9.9.3/32,10.8.8.4/32,10.8.8.3/32,10.8.8.2/32\n" +
		"B 100 fe81::10:90:12/128,fe81::10:90:11/128,fe81::10:a0:12/128,fe81::10:a0:11/128,fe81::10:b0:12/128,fe81::10:b0:11/128\n" +
		"S1 110 \nS2 120 \nS3 130 \n"
	if got := vrrpSummary(cfg); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	for _, tc := range []struct{ line, err string }{
		{"~SEQ(X) 1", "t.conf:5:9: error: ~SEQ(X): want (VAR, [START, [STEP,]] END)"},
		{"~SEQ(X, 1, 0, 4) 1", "a step of 0"},
		{"~SEQx(X, -1, 4) 1", "~SEQx takes numbers from 0 only"},
		{"~SEQ(X, a) 1", `"a" is not a number`},
		{"~SEQ(X, 1, 4 1", `no closing ")"`},
		{"~LST({A, B}, {1}) 1", "1 values for 2 variables"},
		{"~SEQ(1X, 4) 1", "want (VAR"},
	} {
		_, ds := Parse("t.conf", []byte("vrrp_instance A {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n        "+tc.line+"\n }\n}\n"), nil)
		if !strings.Contains(ds.Error(), tc.err) {
			t.Errorf("%s: want %q in\n%s", tc.line, tc.err, diagStrings(ds))
		}
	}
	// the sequence's variable is its own: not defined after it
	_, ds = Parse("t.conf", []byte("~SEQ(Q, 2) $Y=1\nglobal_defs {\n router_id ${Q}x\n}\n"), nil)
	if !strings.Contains(ds.Error(), "undefined variable $Q") {
		t.Errorf("the sequence's variable after it: %s", diagStrings(ds))
	}
}

func TestPredefinedVariables(t *testing.T) {
	t.Setenv("GOVS_TEST_ENV", "from-env")
	src := `global_defs {
    router_id ${_INSTANCE}-${_ENV GOVS_TEST_ENV}
}
vrrp_instance A {
    interface eth0
    virtual_router_id 9
    priority ${_RANDOM 10 20}
    notify_master "${_PWD}/n.sh ${_HASH}${_BANG}"
    virtual_ipaddress {
        10.0.0.1
    }
}
`
	for range 20 {
		cfg, ds := Parse("conf/t.conf", []byte(src), &ParseOptions{ConfigID: "lb7"})
		if ds.HasErrors() {
			t.Fatal(diagStrings(ds))
		}
		abs, _ := filepath.Abs("conf")
		v := cfg.VRRPInstances[0]
		if cfg.Global.RouterID != "lb7-from-env" || v.Priority < 10 || v.Priority > 20 || v.Notify.Master.Cmd != abs+"/n.sh #!" {
			t.Fatalf("router_id %q, priority %d, notify %q", cfg.Global.RouterID, v.Priority, v.Notify.Master.Cmd)
		}
	}
	_, ds := Parse("t.conf", []byte("global_defs {\n router_id x${_RANDOM 9 3}\n}\n"), nil)
	if !strings.Contains(ds.Error(), "t.conf:2:2: error: ${_RANDOM [MIN [MAX]]}: want 0 <= MIN <= MAX") {
		t.Errorf("_RANDOM 9 3: %s", diagStrings(ds))
	}
}

// Variables that use each other end with an error, not a hang.
func TestVariableLoops(t *testing.T) {
	for _, src := range []string{
		"$A=${B}\n$B=${A}\nglobal_defs {\n router_id $A\n}\n",
		"$A=x $A\nglobal_defs {\n router_id $A\n}\n",
		"$M= \\\nrouter_id 1 \\\n$M\nglobal_defs {\n $M\n}\n",
	} {
		_, ds := Parse("t.conf", []byte(src), nil)
		if !strings.Contains(ds.Error(), "variable expansion longer than") && !strings.Contains(ds.Error(), "nested deeper than") {
			t.Errorf("%q: %s", src, diagStrings(ds))
		}
	}
}

// A big template: 8 × 32 instances from one line, each with its own
// variables, as the manual's 65,024-instance example (smaller).
func TestSequenceTemplate(t *testing.T) {
	src := `$VI4= \
vrrp_instance vrrp4.${IF}.${NUM} { \
    interface bond${IF}.${NUM} \
    virtual_router_id ${NUM} \
    priority 130 \
    virtual_ipaddress { \
        10.${IF}.${NUM}.1/24 \
    } \
}
~SEQ(IF,0,7) ~SEQ(NUM,1,32) $VI4
`
	cfg, ds := Parse("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	if len(cfg.VRRPInstances) != 256 {
		t.Fatalf("%d instances", len(cfg.VRRPInstances))
	}
	last := cfg.VRRPInstances[255]
	if last.Name != "vrrp4.7.32" || last.Interface != "bond7.32" || last.VIPs[0].Prefix.String() != "10.7.32.1/24" || strconv.Itoa(last.VirtualRouterID) != "32" {
		t.Errorf("last instance %+v", last)
	}
}

// The writer keeps a line that makes several blocks (a sequence, a
// multiline value) as it is written while they are unchanged, and
// refuses to change or delete one of them.
func TestWriteFilesKeepsSequences(t *testing.T) {
	src := `$I= \
vrrp_instance V${N} { \
    interface eth0 \
    virtual_router_id ${N} \
    virtual_ipaddress { \
        10.0.0.${N} \
    } \
}
~SEQ(N, 1, 3) $I

virtual_server 10.0.0.1 80 {
    real_server 10.0.1.1 80 {
        weight 1
    }
}
`
	parse := func() *Config {
		cfg, ds := Parse("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Fatal(diagStrings(ds))
		}
		return cfg
	}
	cfg := parse()
	cfg.VirtualServers[0].RealServers[0].Weight = 5
	out, err := cfg.WriteFiles()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out["t.conf"])
	if want := strings.Replace(src, "weight 1", "weight 5", 1); got != want {
		t.Errorf("written:\n%s\nwant\n%s", got, want)
	}
	re, ds := Parse("t.conf", out["t.conf"], nil)
	if ds.HasErrors() || vrrpSummary(re) != vrrpSummary(cfg) {
		t.Errorf("written file reads as\n%s%s", vrrpSummary(re), diagStrings(ds))
	}

	cfg = parse()
	cfg.VRRPInstances[1].Priority = 50
	if _, err := cfg.WriteFiles(); err == nil || !strings.Contains(err.Error(), "t.conf:9:1: a block this line makes (with 2 others, through variables or ~SEQ/~LST) was changed") {
		t.Errorf("changed instance of a sequence: %v", err)
	}
	cfg = parse()
	cfg.VRRPInstances = cfg.VRRPInstances[:2]
	if _, err := cfg.WriteFiles(); err == nil || !strings.Contains(err.Error(), "was deleted") {
		t.Errorf("deleted instance of a sequence: %v", err)
	}
}

// Review cases: bounds, warnings and the weight writer.
func TestExpansionEdges(t *testing.T) {
	parse := func(src string) (*Config, Diagnostics) { return Parse("t.conf", []byte(src), nil) }
	defer func(n int) { maxLineTokens = n }(maxLineTokens)
	maxLineTokens = 5000
	for _, tc := range []struct{ src, want string }{
		{"global_defs {\n router_id x${_RANDOM 0 9223372036854775807}\n}\n", "want 0 <= MIN <= MAX <= 2147483647"},
		{"~SEQ(a,1,1000000) ~SEQ(b,1,1000000)\n", "take more than 1048576 values"},
		{"$W=a b c d e f g h i j\n$W2=$W $W $W $W $W $W $W $W $W $W\n~SEQ(a,1,1000) $W2\n", "more than 5000 words"},
		{"$W=a b c d e f g h i j\n$M= \\\n$W \\\n$W\n$M1= \\\n$M \\\n$M\n$M2= \\\n$M1 \\\n$M1\n~SEQ(a,1,1000) $M2\n", "more than 5000 words"},
		{"$X=5\nglobal_defs {\n router_id $X.a\n}\n", `t.conf:3:2: warning: $X before "." is not replaced (only before a blank, as keepalived does): write ${X}`},
		{"$VIP=1\nvirtual_server_group G {\n 10.0.0.$VIP}\n", `$VIP before "}" is not replaced`},
		{"$M= \\\n router_id 1 \\\n", `multiline definition of $M: the file ends before a line without a final "\"`},
	} {
		start := time.Now()
		_, ds := parse(tc.src)
		if !strings.Contains(ds.Error(), tc.want) {
			t.Errorf("%q: want %q in\n%s", tc.src, tc.want, diagStrings(ds))
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%q took %v", tc.src, d)
		}
	}
	cfg, ds := parse("$X=1\nglobal_defs {\n router_id \"a${ $X b\"\n}\n")
	if cfg.Global.RouterID != "a${ 1 b" {
		t.Errorf("an unclosed ${: router_id %q (%s)", cfg.Global.RouterID, diagStrings(ds))
	}
	if _, vals, err := parseSeq("I, 9223372036854775800, 10, 9223372036854775807", false); err != nil || len(vals) != 1 {
		t.Errorf("a sequence past the largest number: %v %v", vals, err)
	}
}

// The manual's template at the size of a large site: 41 × 255 instances
// from one line.
func TestSequenceTemplateLarge(t *testing.T) {
	src := `$VI4= \
vrrp_instance vrrp4.${IF}.${NUM} { \
    interface bond${IF}.${NUM} \
    use_vmac vrrp4.${IF}.${NUM} \
    virtual_router_id ${NUM} \
    priority 130 \
    virtual_ipaddress { \
        10.${IF}.${NUM}.1/24 \
    } \
}
~SEQ(IF,0,40) ~SEQ(NUM,1,255) $VI4
`
	cfg, ds := Parse("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds)[:2000])
	}
	if len(cfg.VRRPInstances) != 41*255 {
		t.Errorf("%d instances", len(cfg.VRRPInstances))
	}
}

// The weight writer refuses a real_server written through variables or
// a sequence (its text is not its words), and the writer keeps a line
// that makes statements without objects (includes).
func TestWritersAndExpandedLines(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "k.conf")
	src := "virtual_server 10.0.0.1 80 {\n    ~SEQ(i, 1, 3) real_server 10.0.1.${i} 80 { inhibit_on_failure }\n    real_server 10.0.0.9 80 {\n        inhibit_on_failure\n    }\n}\n~SEQ(i, 1, 2) include vs${i}.conf\n"
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("k.conf", src)
	write("vs1.conf", "virtual_server 10.0.0.2 80 {\n}\n")
	write("vs2.conf", "virtual_server 10.0.0.3 80 {\n}\n")
	cfg, ds := Load(main, nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	vs := cfg.VirtualServers[0]
	if len(vs.RealServers) != 4 || len(cfg.VirtualServers) != 3 {
		t.Fatalf("%d real servers, %d virtual servers", len(vs.RealServers), len(cfg.VirtualServers))
	}
	if _, err := cfg.SetRealServerWeight(vs.RealServers[1], 7); err == nil || !strings.Contains(err.Error(), "written through variables or ~SEQ/~LST") {
		t.Errorf("weight of a real_server from a sequence: %v", err)
	}
	out, err := cfg.SetRealServerWeight(vs.RealServers[3], 7)
	if err != nil || !strings.Contains(string(out[main]), "real_server 10.0.0.9 80 {\n        weight 7\n") {
		t.Errorf("weight of the literal real_server: %v\n%s", err, out[main])
	}
	cfg, _ = Load(main, nil)
	out, err = cfg.WriteFiles()
	if err != nil || string(out[main]) != src {
		t.Errorf("unchanged write: %v\n%s", err, out[main])
	}
}

// keepalived's include variants and include_check, and brace patterns.
func TestIncludeVariants(t *testing.T) {
	files := map[string]string{
		"/k/a.conf":      "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
		"/k/b.conf":      "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n",
		"/k/d/x.conf":    "vrrp_instance X {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n  10.0.0.3\n }\n}\n",
		"/k/empty/.keep": "",
	}
	opts := memFiles(files)
	for _, tc := range []struct{ src, names, diag string }{
		{"includer a.conf\nincludem b.conf\nincludea d/*.conf\n", "A,B,X", ""},
		{"include {b,a,d/x}.conf\n", "B,A,X", ""},
		{"include {a,{b,zz}}.conf\n", "A,B", "no such file /k/zz.conf"},
		{"include empty/*.conf\n", "", ""},
		{"includer empty/*.conf\n", "", ""},
		{"include none.conf\n", "", `warning: include "none.conf": no such file /k/none.conf (read as nothing`},
		{"includem none.conf\n", "", `error: includem "none.conf": no such file`},
		{"includem empty/*.conf\n", "", ""},
		{"includew empty/*.conf\n", "", `error: includew "empty/*.conf": no such file`},
		{"includeb {a,zz}.conf\n", "A", `/k/zz.conf matches no file (include_check brace_match)`},
		{"global_defs {\n include_check\n}\ninclude empty/*.conf\n", "", `error: include "empty/*.conf": no such file`},
		{"global_defs {\n include_check wildcard_match\n}\ninclude empty/*.conf\n", "", `no such file`},
		{"global_defs {\n include_check\n include_check -wildcard_match -match -brace_match\n}\ninclude empty/*.conf\n", "", ""},
		{"global_defs {\n include_check +sometimes\n}\n", "", `include_check: unknown check "+sometimes"`},
		{"global_defs {\n include_check read\n}\ninclude empty/*.conf\n", "", ""},
	} {
		cfg, ds := Parse("/k/main.conf", []byte(tc.src), opts)
		if got := instanceNames(cfg); got != tc.names {
			t.Errorf("%q: instances %s, want %s (%s)", tc.src, got, tc.names, diagStrings(ds))
		}
		if tc.diag == "" && len(ds) > 0 || tc.diag != "" && !strings.Contains(diagStrings(ds), tc.diag) {
			t.Errorf("%q: diagnostics\n%s\nwant %q", tc.src, diagStrings(ds), tc.diag)
		}
	}
	if got := strings.Join(expandBraces("/a/{x,y{1,2}}/{p,q}.c{onf}"), " "); got != "/a/x/p.c{onf} /a/x/q.c{onf} /a/y1/p.c{onf} /a/y1/q.c{onf} /a/y2/p.c{onf} /a/y2/q.c{onf}" {
		t.Errorf("expandBraces: %s", got)
	}
}

// Review cases of the include variants: variables in an include line,
// include_check with words and modifiers, where it takes effect, checks
// per brace alternative, the bound on alternatives.
func TestIncludeChecksAsKeepalived(t *testing.T) {
	files := map[string]string{
		"/k/a.conf":    "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n",
		"/k/d/x.conf":  "vrrp_instance X {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n  10.0.0.3\n }\n}\n",
		"/k/body.conf": " include_check\n",
	}
	opts := memFiles(files)
	for _, tc := range []struct{ src, names, diag string }{
		{"$D=d\ninclude ${_PWD}/${D}/*.conf\n", "X", ""},
		{"$D=d\ninclude ${_PWD}/{a,${D}/x}.conf\n", "A,X", ""},
		{"global_defs {\n include_check brace_match +match\n}\ninclude none.conf\n", "", `error: include "none.conf": no such file`},
		{"global_defs {\n include_check\n include none.conf\n}\n", "", `error: include "none.conf": no such file`},
		{"global_defs {\n include body.conf\n}\ninclude none.conf\n", "", `warning: include "none.conf": no such file`},
		{"global_defs {\n include_check wildcard_match\n}\ninclude none.conf\n", "", `warning: include "none.conf": no such file`},
		{"includem {none,zz}.conf\n", "", `warning: includem "{none,zz}.conf": no such file /k/none.conf`},
		{"includeb {a,zz*}.conf\n", "A", ""},
		{"include {a,zz}.conf\n", "A", `warning: include "{a,zz}.conf": no such file /k/zz.conf`},
		{"include /x/" + strings.Repeat("{a,b}", 30) + "\n", "", "more than 4096 alternatives"},
		{"$D=/k\nincludea $D/{a,b}.conf\n", "", `error: includea "$D/{a,b}.conf": /k/$D/a.conf matches no file`},
		{"virtual_server 10.0.0.1 80 {\n include_check\n}\ninclude none/*.conf\n", "", `unsupported keyword "include_check" in virtual_server`},
	} {
		cfg, ds := Parse("/k/main.conf", []byte(tc.src), opts)
		if got := instanceNames(cfg); got != tc.names {
			t.Errorf("%q: instances %s, want %s (%s)", tc.src, got, tc.names, diagStrings(ds))
		}
		if tc.diag == "" && len(ds) > 0 || tc.diag != "" && !strings.Contains(diagStrings(ds), tc.diag) {
			t.Errorf("%q: diagnostics\n%s\nwant %q", tc.src, diagStrings(ds), tc.diag)
		}
	}
}

// memFiles reads included files from a map (path → content).
func memFiles(files map[string]string) *ParseOptions {
	return &ParseOptions{
		ReadFile: func(n string) ([]byte, error) {
			if b, ok := files[n]; ok {
				return []byte(b), nil
			}
			return nil, os.ErrNotExist
		},
		Glob: func(p string) ([]string, error) {
			var out []string
			for n := range files {
				if ok, _ := filepath.Match(p, n); ok {
					out = append(out, n)
				}
			}
			return out, nil
		},
	}
}

// instanceNames is the VRRP instances' names, comma-separated.
func instanceNames(c *Config) string {
	var s []string
	for _, v := range c.VRRPInstances {
		s = append(s, v.Name)
	}
	return strings.Join(s, ",")
}

// random_seed makes ${_RANDOM} the same at every read.
func TestRandomSeed(t *testing.T) {
	src := "global_defs {\n    random_seed 42\n    router_id r${_RANDOM}-${_RANDOM 1 1000000}\n}\n"
	var ids []string
	for range 3 {
		cfg, ds := Parse("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Fatal(diagStrings(ds))
		}
		ids = append(ids, cfg.Global.RouterID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("router_id with random_seed 42: %v", ids)
	}
	other, _ := Parse("t.conf", []byte(strings.Replace(src, "42", "43", 1)), nil)
	if other.Global.RouterID == ids[0] {
		t.Errorf("seeds 42 and 43 gave the same %s", ids[0])
	}
	if f := string(Format(other)); !strings.Contains(f, "random_seed 43") {
		t.Errorf("Format lost random_seed:\n%s", f)
	}
	if _, ds := Parse("t.conf", []byte("global_defs {\n    random_seed x\n}\n"), nil); !strings.Contains(ds.Error(), `random_seed "x" is not an unsigned number`) {
		t.Errorf("random_seed x: %s", diagStrings(ds))
	}
}
