//go:build !linux

package stream

import "net"

// watchClose is the Linux close watcher's stand-in: ok false, so each
// detached stream reads its connection on a goroutine of its own.
func watchClose(net.Conn, func()) (unwatch func(), ok bool) { return nil, false }
