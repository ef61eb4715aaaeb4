package config

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// rtTablesDirs are where iproute2 keeps its routing table names: the
// distribution's defaults (/usr/share/iproute2, iproute2 6.5 and later),
// then the administrator's (/etc/iproute2). As iproute2 reads them: the
// last directory's rt_tables instead of the earlier ones', then the
// rt_tables.d/*.conf files of all of them in name order, a file of a later
// directory in place of an earlier one of the same name. A variable so
// tests can point it elsewhere.
var rtTablesDirs = []string{"/usr/share/iproute2", "/etc/iproute2"}

// builtinTables are the names iproute2 knows without any file.
var builtinTables = map[string]int{"unspec": 0, "default": 253, "main": 254, "local": 255}

// routeTable resolves a virtual_routes or virtual_rules `table` word as
// keepalived and `ip route` do: a number (decimal or 0x hex, 0 to
// 2^32-1), a built-in name, or a name from the rt_tables files. ok is
// false for a name found nowhere.
func routeTable(word string) (id int, ok bool) {
	if n, err := strconv.ParseUint(word, 0, 32); err == nil {
		if n > math.MaxInt {
			// a table id int cannot hold on a 32-bit system
			return 0, false
		}
		return int(n), true
	}
	id, ok = iprouteNames("rt_tables", builtinTables)[word]
	return id, ok
}

// iprouteNames reads iproute2's name files of one kind (rt_tables,
// rt_protos) as iproute2 does, over the built-in names: the last
// directory's base file instead of the earlier ones', then the
// base.d/*.conf files of all of them in name order, a file of a later
// directory in place of an earlier one of the same name. Each line
// names a number (a later line renames it); a name given to several
// numbers stands for the lowest, as iproute2 looks names up (FRR's
// rt_protos.d/frr.conf names 196 "static", and "static" is still 4).
func iprouteNames(base string, builtin map[string]int) map[string]int {
	ids := map[int]string{}
	for k, v := range builtin {
		ids[v] = k
	}
	for i := len(rtTablesDirs) - 1; i >= 0; i-- {
		f := filepath.Join(rtTablesDirs[i], base)
		if _, err := os.Stat(f); err == nil {
			readRTTables(f, ids)
			break
		}
	}
	conf := map[string]string{} // file name -> the path that counts
	for _, dir := range rtTablesDirs {
		more, _ := filepath.Glob(filepath.Join(dir, base+".d", "*.conf"))
		for _, f := range more {
			conf[filepath.Base(f)] = f
		}
	}
	order := make([]string, 0, len(conf))
	for name := range conf {
		order = append(order, name)
	}
	sort.Strings(order)
	for _, name := range order {
		readRTTables(conf[name], ids)
	}
	names := map[string]int{}
	for id, name := range ids {
		if old, ok := names[name]; !ok || id < old {
			names[name] = id
		}
	}
	return names
}

// readRTTables adds the "ID NAME" lines of one rt_tables file to ids;
// a file that cannot be read adds nothing, as iproute2 has it.
func readRTTables(path string, ids map[int]string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		n, err := strconv.ParseUint(fs[0], 0, 32)
		if err != nil {
			continue
		}
		ids[int(n)] = fs[1]
	}
}

// routeProtos are iproute2's built-in route protocol names.
var routeProtos = map[string]int{
	"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9,
	"mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16,
	"keepalived": 18, "babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192,
}

// routeProto reads a route protocol: a number 0..255, or a name,
// built in or from iproute2's rt_protos files (read as the rt_tables
// ones).
func routeProto(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 255
	}
	n, ok := iprouteNames("rt_protos", routeProtos)[s]
	return n, ok && n >= 0 && n <= 255
}
