// Package configsync sends a director's configuration files to its peers
// and takes theirs: keepalived users copy keepalived.conf to the backup
// with scp after every change (Piranha's guide says so too); govs does it
// itself. One file can serve both directors, with conditional lines
// (@ID) for what differs.
//
// A message carries every file the configuration reads (paths relative
// to the main file's directory), the revision of those files and the
// revision the sender had before its change. It is sealed with
// AES-256-GCM under a key made from the shared secret, so that the files
// (password hashes, VRRP passwords) cross the network unreadable and
// unforgeable; it is refused when older than MaxAge or seen before.
//
// A peer takes a message only when its own files are the sender's
// previous revision (the two were in sync before the change) or already
// the new one, unless the push is forced: hand edits on the peer are not
// overwritten silently. The files must load without errors there, with
// the peer's own config-id, before anything is written.
package configsync

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govs/govs/internal/config"
)

// MaxAge is how old (or how far in the future) a message may be.
const MaxAge = 5 * time.Minute

// maxMessage bounds a sealed message (the files of one configuration).
const maxMessage = 16 << 20

// Message is what one director sends another.
type Message struct {
	From   string    `json:"from"`
	SentAt time.Time `json:"sent_at"`
	// Main is the main file's name (its base); Files are every file the
	// configuration reads, by path relative to the main file's directory.
	Main  string            `json:"main"`
	Files map[string][]byte `json:"files"`
	// Revision is Files' revision (Revision); Prev the sender's revision
	// before its change ("" when it does not know it).
	Revision string `json:"revision"`
	Prev     string `json:"prev,omitempty"`
	// Force replaces the peer's files whatever they are.
	Force bool `json:"force,omitempty"`
}

// Revision identifies a set of files by their relative names and
// contents, the same on both directors whatever their directories.
func Revision(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(n)))
		h.Write(l[:])
		h.Write([]byte(n))
		binary.BigEndian.PutUint64(l[:], uint64(len(files[n])))
		h.Write(l[:])
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Files returns the files a loaded configuration was read from, by path
// relative to the directory of main, and their revision. A file outside
// that directory (an include by absolute path elsewhere) cannot be sent.
func Files(main string, cfg *config.Config) (map[string][]byte, string, error) {
	dir := filepath.Dir(main)
	out := map[string][]byte{}
	for name, data := range cfg.Sources() {
		rel, err := filepath.Rel(dir, name)
		if err != nil || !filepath.IsLocal(rel) {
			return nil, "", fmt.Errorf("%s is outside %s, the main file's directory: the configuration sync sends only files under it", name, dir)
		}
		out[filepath.ToSlash(rel)] = data
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s: no configuration file read", main)
	}
	return out, Revision(out), nil
}

func key(secret string) []byte {
	k := sha256.Sum256([]byte("govs config sync v1\x00" + secret))
	return k[:]
}

// Seal encrypts and authenticates m under secret: a version byte, the
// 12-byte nonce, then the AES-256-GCM ciphertext of m's JSON.
func Seal(secret string, m *Message) ([]byte, error) {
	plain, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key(secret))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plain)+gcm.Overhead())
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return gcm.Seal(out, out[1:], plain, out[:1]), nil
}

// ErrRefused wraps the reasons a message is not taken (bad seal, old,
// replayed, malformed).
var ErrRefused = errors.New("configuration sync message refused")

// Replay remembers the nonces of the messages taken within MaxAge.
type Replay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (r *Replay) check(nonce []byte, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	for n, t := range r.seen {
		if now.Sub(t) > 2*MaxAge {
			delete(r.seen, n)
		}
	}
	if _, ok := r.seen[string(nonce)]; ok {
		return false
	}
	r.seen[string(nonce)] = now
	return true
}

// Open checks and decrypts a sealed message.
func Open(secret string, b []byte, now time.Time, rp *Replay) (*Message, error) {
	block, err := aes.NewCipher(key(secret))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(b) < 1+gcm.NonceSize()+gcm.Overhead() || b[0] != 1 {
		return nil, fmt.Errorf("%w: not a version 1 message (%d bytes)", ErrRefused, len(b))
	}
	nonce := b[1 : 1+gcm.NonceSize()]
	plain, err := gcm.Open(nil, nonce, b[1+gcm.NonceSize():], b[:1])
	if err != nil {
		return nil, fmt.Errorf("%w: it does not open with this secret (another secret, or altered on the way)", ErrRefused)
	}
	var m Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if d := now.Sub(m.SentAt); d > MaxAge || d < -MaxAge {
		return nil, fmt.Errorf("%w: sent at %s, %s from this host's clock (at most %s): replayed, or the clocks differ", ErrRefused, m.SentAt.Format(time.RFC3339), d.Round(time.Second), MaxAge)
	}
	if rp != nil && !rp.check(nonce, now) {
		return nil, fmt.Errorf("%w: already received (a replay)", ErrRefused)
	}
	if _, ok := m.Files[m.Main]; !ok {
		return nil, fmt.Errorf("%w: the main file %q is not in the message", ErrRefused, m.Main)
	}
	for n := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(n)) || strings.Contains(n, "\\") {
			return nil, fmt.Errorf("%w: file name %q is not a path under the configuration's directory", ErrRefused, n)
		}
	}
	if Revision(m.Files) != m.Revision {
		return nil, fmt.Errorf("%w: the files do not have the revision the message says", ErrRefused)
	}
	return &m, nil
}

// ErrConflict is returned by Apply when this director's files are neither
// the sender's previous revision nor its new one.
var ErrConflict = errors.New("configuration sync conflict")

// Result is what Apply did.
type Result struct {
	// Written are the files written, Removed those put aside (files
	// this configuration read that the sender's no longer has).
	Written, Removed []string
	// Revision is the files' revision now.
	Revision string
}

// Apply takes a message's files into the configuration whose main file
// is main (read with opts, for the config-id): checked against the
// current files (see the package comment), loaded from the message alone
// (an error refuses it, nothing written), then written atomically under
// the configuration's lock. The caller reloads.
func Apply(main string, opts *config.ParseOptions, m *Message) (*Result, error) {
	unlock, err := config.Lock(main)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, _ := config.ParseFile(main, opts)
	curFiles, curRev, err := Files(main, cur)
	if err != nil {
		curFiles, curRev = map[string][]byte{}, ""
	}
	if curRev == m.Revision {
		return &Result{Revision: curRev}, nil
	}
	if !m.Force && (m.Prev == "" || curRev != m.Prev) {
		return nil, fmt.Errorf("%w: this director's files (revision %s) are not those %s had before its change (%s): they were changed here, or the two were not in sync; resolve by hand, or push with --force from the director whose files should win", ErrConflict, orNone(curRev), m.From, orNone(m.Prev))
	}
	dir := filepath.Dir(main)
	local := func(rel string) string {
		if rel == m.Main {
			return main
		}
		return filepath.Join(dir, filepath.FromSlash(rel))
	}
	files := map[string][]byte{}
	for rel, data := range m.Files {
		files[local(rel)] = data
	}
	// load what would be written, and only that
	var ro config.ParseOptions
	if opts != nil {
		ro = *opts
	}
	ro.ReadFile = func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s is not among the files %s sent", name, m.From)
	}
	ro.Glob = func(pattern string) ([]string, error) {
		var out []string
		for name := range files {
			if ok, _ := filepath.Match(pattern, name); ok {
				out = append(out, name)
			}
		}
		return out, nil
	}
	if _, ds := config.Load(main, &ro); ds.HasErrors() {
		return nil, &config.InvalidError{Problems: ds}
	}
	res := &Result{Revision: m.Revision}
	changed := map[string][]byte{}
	for name, data := range files {
		if old, ok := cur.Sources()[name]; !ok || !bytes.Equal(old, data) {
			if _, err := os.Stat(name); err != nil && !ok {
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					return nil, err
				}
			}
			changed[name] = data
			res.Written = append(res.Written, name)
		}
	}
	if err := config.WriteStaged(changed); err != nil {
		return nil, err
	}
	// files read here that the sender no longer has: put aside (a dot
	// name, which no include pattern matches)
	for rel := range curFiles {
		if _, ok := m.Files[rel]; ok || rel == filepath.Base(main) {
			continue
		}
		name := filepath.Join(dir, filepath.FromSlash(rel))
		aside := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".removed-by-sync")
		if err := os.Rename(name, aside); err == nil {
			res.Removed = append(res.Removed, name)
		}
	}
	sort.Strings(res.Written)
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
