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
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/govs/govs/internal/config"
)

// MaxAge is how old (or how far in the future) a message may be.
const MaxAge = 5 * time.Minute

// MaxMessage bounds a sealed message (the files of one configuration).
const MaxMessage = 4 << 20

// Message is what one director sends another.
type Message struct {
	From   string    `json:"from"`
	SentAt time.Time `json:"sent_at"`
	// Main is the main file's name (its base); Files are every file the
	// configuration reads, by path relative to the main file's directory.
	Main  string            `json:"main"`
	Files map[string][]byte `json:"files"`
	// Revision is Files' revision (Revision). Prevs are revisions the
	// sender has had (in force, or taken from a peer), the latest last:
	// a peer whose files are one of them has nothing the sender has not
	// built on, and takes the new ones.
	Revision string   `json:"revision"`
	Prevs    []string `json:"prevs,omitempty"`
	// Force replaces the peer's files whatever they are.
	Force bool `json:"force,omitempty"`
}

// Revision identifies a set of files by their relative names and
// contents, the same on both directors whatever their directories and
// whatever the main file's name (main; it counts as "").
func Revision(files map[string][]byte, main string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		var l [8]byte
		key := n
		if n == main {
			key = ""
		}
		binary.BigEndian.PutUint64(l[:], uint64(len(key)))
		h.Write(l[:])
		h.Write([]byte(key))
		binary.BigEndian.PutUint64(l[:], uint64(len(files[n])))
		h.Write(l[:])
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Files returns the files a loaded configuration was read from, by path
// relative to the directory of main, and their revision. A file outside
// that directory (an include by absolute path elsewhere) cannot be sent,
// nor a configuration whose include lines are conditional (the peer would
// read other files).
func Files(main string, cfg *config.Config) (map[string][]byte, string, error) {
	if cfg.HasConditionalIncludes() {
		return nil, "", fmt.Errorf("%s has conditional include lines (@ID include …): the directors read different files, which the configuration sync cannot keep in step; put what differs on conditional lines of shared files instead", main)
	}
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
	return out, Revision(out, filepath.Base(main)), nil
}

// MinSecret is the shortest secret Seal takes.
const MinSecret = 16

var keys struct {
	sync.Mutex
	m map[string][]byte
}

// key derives the AES key from the secret with scrypt (slow on purpose:
// a captured message does not allow fast guessing), once per secret.
func key(secret string) ([]byte, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("the configuration sync secret has %d characters; it needs at least %d", len(secret), MinSecret)
	}
	keys.Lock()
	defer keys.Unlock()
	if k, ok := keys.m[secret]; ok {
		return k, nil
	}
	k, err := scrypt.Key([]byte(secret), []byte("govs config sync v1"), 1<<15, 8, 1, 32)
	if err != nil {
		return nil, err
	}
	if keys.m == nil || len(keys.m) > 8 {
		keys.m = map[string][]byte{}
	}
	keys.m[secret] = k
	return k, nil
}

func aead(secret string) (cipher.AEAD, error) {
	k, err := key(secret)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts and authenticates m under secret: a version byte, the
// 12-byte nonce, then the AES-256-GCM ciphertext of m's JSON.
func Seal(secret string, m *Message) ([]byte, error) {
	plain, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return seal(secret, plain, nil)
}

// seal seals plain; extra is authenticated with it (a reply names the
// request's nonce so).
func seal(secret string, plain, extra []byte) ([]byte, error) {
	gcm, err := aead(secret)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plain)+gcm.Overhead())
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return gcm.Seal(out, out[1:], plain, append(out[:1:1], extra...)), nil
}

// unseal opens what seal made.
func unseal(secret string, b, extra []byte) (plain, nonce []byte, err error) {
	gcm, err := aead(secret)
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 1+gcm.NonceSize()+gcm.Overhead() || b[0] != 1 {
		return nil, nil, fmt.Errorf("%w: not a version 1 message (%d bytes)", ErrRefused, len(b))
	}
	nonce = b[1 : 1+gcm.NonceSize()]
	plain, err = gcm.Open(nil, nonce, b[1+gcm.NonceSize():], append(b[:1:1], extra...))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: it does not open with this secret (another secret, or altered on the way)", ErrRefused)
	}
	return plain, nonce, nil
}

// Nonce returns a sealed message's nonce (what its reply is bound to).
func Nonce(b []byte) []byte {
	if len(b) < 13 {
		return nil
	}
	return b[1:13]
}

// SealReply seals a reply to the request whose nonce is given: the sender
// knows it comes from a director with the secret, for this request.
func SealReply(secret string, reqNonce []byte, v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return seal(secret, plain, reqNonce)
}

// OpenReply opens a reply sealed by SealReply into v.
func OpenReply(secret string, reqNonce, b []byte, v any) error {
	plain, _, err := unseal(secret, b, reqNonce)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, v)
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
	plain, nonce, err := unseal(secret, b, nil)
	if err != nil {
		return nil, err
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
		if !filepath.IsLocal(filepath.FromSlash(n)) || strings.Contains(n, "\\") || path.Clean(n) != n {
			return nil, fmt.Errorf("%w: file name %q is not a clean path under the configuration's directory", ErrRefused, n)
		}
	}
	if Revision(m.Files, m.Main) != m.Revision {
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
	// Replaced is the revision a forced message replaced when it was not
	// the sender's previous one (changes made here; the files are kept
	// as .NAME.replaced-by-sync).
	Replaced string
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
	if err != nil && len(cur.Files) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	if err != nil {
		curFiles, curRev = map[string][]byte{}, ""
	}
	if curRev == m.Revision {
		return &Result{Revision: curRev}, nil
	}
	replaced := ""
	if curRev == "" || !slices.Contains(m.Prevs, curRev) {
		if !m.Force {
			last := ""
			if len(m.Prevs) > 0 {
				last = m.Prevs[len(m.Prevs)-1]
			}
			return nil, fmt.Errorf("%w: this director's files (revision %s) are none that %s has had (its last: %s): they were changed here, or the two were not in sync; resolve by hand, or push with --force from the director whose files should win (the files it replaces are kept beside them)", ErrConflict, orNone(curRev), m.From, orNone(last))
		}
		replaced = curRev
	}
	dir := filepath.Dir(main)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	mainKey := filepath.Base(main)
	local := func(rel string) string {
		if rel == m.Main {
			return main
		}
		return filepath.Join(dir, filepath.FromSlash(rel))
	}
	files := map[string][]byte{}
	for rel, data := range m.Files {
		name := local(rel)
		if rel != m.Main && name == main {
			return nil, fmt.Errorf("%w: %s sent a file named %q besides its main file, the name of this director's main file", ErrRefused, m.From, rel)
		}
		files[name] = data
	}
	// load what would be written, and only that; what it reads is what
	// is written
	var ro config.ParseOptions
	if opts != nil {
		ro = *opts
	}
	read := map[string]bool{}
	ro.ReadFile = func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			read[name] = true
			return b, nil
		}
		return nil, fmt.Errorf("%s is here and matches an include of the files %s sent, which do not have it: remove it here, or add it there", name, m.From)
	}
	ro.Glob = func(pattern string) ([]string, error) {
		// the files of the message, and those on disk, as the reload
		// will see them: a file here that the sender does not have
		// refuses the message (read below)
		seen := map[string]bool{}
		var out []string
		for name := range files {
			if ok, _ := filepath.Match(pattern, name); ok && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
		disk, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		for _, name := range disk {
			if !seen[name] && !strings.HasPrefix(filepath.Base(name), ".") {
				// one this configuration reads now is put aside below
				if _, putAside := curFiles[relTo(dir, name)]; !putAside {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
		return out, nil
	}
	if _, ds := config.Load(main, &ro); ds.HasErrors() {
		return nil, &config.InvalidError{Problems: ds}
	}
	curSrc := cur.Sources()
	for name := range files {
		if !read[name] {
			return nil, fmt.Errorf("%w: %s is not read by the configuration %s sent", ErrRefused, name, m.From)
		}
		// a file the configuration reads now may be anywhere it is; a
		// new one must be in the configuration's directory, links
		// followed
		if _, known := curSrc[name]; !known {
			if fi, err := os.Lstat(name); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				return nil, fmt.Errorf("%w: %s is a symbolic link here and not part of this configuration: not written through", ErrRefused, name)
			}
			// the deepest directory of the path that exists, links
			// followed, must be inside the configuration's
			anc := filepath.Dir(name)
			for {
				if _, err := os.Lstat(anc); err == nil || anc == filepath.Dir(anc) {
					break
				}
				anc = filepath.Dir(anc)
			}
			real, err := filepath.EvalSymlinks(anc)
			if rel, rerr := filepath.Rel(realDir, real); err != nil || rerr != nil || !filepath.IsLocal(rel) {
				return nil, fmt.Errorf("%w: %s would be written outside %s (a symbolic link in the path)", ErrRefused, name, dir)
			}
		}
	}
	res := &Result{Revision: m.Revision, Replaced: replaced}
	changed := map[string][]byte{}
	for name, data := range files {
		if old, ok := curSrc[name]; !ok || !bytes.Equal(old, data) {
			if !ok {
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					return nil, err
				}
			}
			if ok && replaced != "" {
				// what a forced push replaces is kept, or nothing is
				// written
				if err := config.WriteStaged(map[string][]byte{backupName(name, "replaced"): old}, 0o600); err != nil {
					return nil, fmt.Errorf("keeping %s before replacing it: %w", name, err)
				}
			}
			changed[name] = data
			res.Written = append(res.Written, name)
		}
	}
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(main); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := config.WriteStaged(changed, mode); err != nil {
		return nil, err
	}
	// files read here that the sender no longer has: put aside (a dot
	// name, which no include pattern matches)
	for rel := range curFiles {
		if _, ok := m.Files[rel]; ok || rel == mainKey {
			continue
		}
		name := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.Rename(name, backupName(name, "removed")); err == nil {
			res.Removed = append(res.Removed, name)
		}
	}
	sort.Strings(res.Written)
	return res, nil
}

// backupName is where a file the sync replaced or removed is kept: a
// dot name beside it, which no include pattern matches.
func backupName(name, what string) string {
	return filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+"."+what+"-by-sync")
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// relTo is name relative to dir, with slashes (a Files key).
func relTo(dir, name string) string {
	rel, err := filepath.Rel(dir, name)
	if err != nil {
		return name
	}
	return filepath.ToSlash(rel)
}
