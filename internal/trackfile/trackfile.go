// Package trackfile reads the value of a keepalived track file, as
// keepalived 2.2.7 does for vrrp_track_file and FILE_CHECK: the leading
// integer, read the way C's strtol reads it with base 0.
package trackfile

import "math"

// Value is the leading integer of a track file's content, as strtol(3)
// with base 0 reads it: blanks skipped, an optional sign, then a
// hexadecimal number after 0x, an octal one after a leading 0, else a
// decimal one, up to the first other character ("8 trailing" is 8, "2.5"
// is 2, "0x10" is 16, "010" is 8); 0 when there is none (text, an empty
// file). It saturates at the int64 bounds, as strtol does at its own.
func Value(b []byte) int64 {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := int64(10)
	switch {
	case i+2 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && digit(b[i+2], 16) >= 0:
		base, i = 16, i+2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	var v int64
	for ; i < len(b); i++ {
		d := digit(b[i], base)
		if d < 0 {
			break
		}
		if v > (math.MaxInt64-d)/base {
			if neg {
				return math.MinInt64
			}
			return math.MaxInt64
		}
		v = v*base + d
	}
	if neg {
		return -v
	}
	return v
}

// digit is c's value in base, -1 when it is not one of its digits.
func digit(c byte, base int64) int64 {
	var d int64
	switch {
	case c >= '0' && c <= '9':
		d = int64(c - '0')
	case c >= 'a' && c <= 'f':
		d = int64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		d = int64(c-'A') + 10
	default:
		return -1
	}
	if d >= base {
		return -1
	}
	return d
}

// Int is the value as keepalived 2.2.7 takes it: an int. ok is false
// when the value does not fit in 32 bits: keepalived then logs "Invalid
// number ... - ignoring" and keeps the value it had.
func Int(b []byte) (v int, ok bool) {
	x := Value(b)
	if x < math.MinInt32 || x > math.MaxInt32 {
		return 0, false
	}
	return int(x), true
}
