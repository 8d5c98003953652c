package main

import (
	"bufio"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// socketInodes returns the inodes of this process's open sockets.
func socketInodes(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes
}

// procNet returns the rows of a /proc/net table whose inode (at column
// inodeAt) is one of inodes.
func procNet(t *testing.T, table string, inodeAt int, inodes map[string]bool) [][]string {
	t.Helper()
	f, err := os.Open("/proc/net/" + table)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if row := strings.Fields(lines.Text()); len(row) > inodeAt && inodes[row[inodeAt]] {
			rows = append(rows, row)
		}
	}
	return rows
}

// tcpListeners returns the TCP ports this process listens on.
func tcpListeners(t *testing.T) map[int]bool {
	t.Helper()
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		for _, row := range procNet(t, table, 9, socketInodes(t)) {
			if row[3] != "0A" { // LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(row[1], ":")
			port, _ := strconv.ParseInt(hexPort, 16, 32)
			ports[int(port)] = true
		}
	}
	return ports
}

// TestEmbeddedStoreNotExposed starts the server on the embedded store
// without --embedded-listen: the process listens on TCP for its HTTP
// server only, and reaches the store through a Unix socket in a directory
// only its user may enter.
func TestEmbeddedStoreNotExposed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's sockets from /proc")
	}
	before := tcpListeners(t)
	base := startServer(t, "--data-dir", t.TempDir(), "--demo", "0")
	u, _ := url.Parse(base)
	httpPort, _ := strconv.Atoi(u.Port())
	for port := range tcpListeners(t) {
		if !before[port] && port != httpPort {
			t.Errorf("the process listens on TCP port %d besides its HTTP port %d", port, httpPort)
		}
	}
	sockets := 0
	for _, row := range procNet(t, "unix", 6, socketInodes(t)) {
		if flags, _ := strconv.ParseUint(row[3], 16, 32); len(row) < 8 || flags&0x10000 == 0 {
			continue // not a listening socket (__SO_ACCEPTCON) with a path
		}
		sockets++
		fi, err := os.Stat(filepath.Dir(row[7]))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("the store's socket %s is in a directory of mode %v, want 0700", row[7], fi.Mode().Perm())
		}
	}
	if sockets != 1 {
		t.Errorf("the process listens on %d Unix sockets, want 1 (the store's)", sockets)
	}
}
