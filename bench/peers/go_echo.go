// go_echo.go: the idiomatic Go echo server: a goroutine per client, io.Copy.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			io.Copy(c, c)
			c.Close()
		}(c)
	}
}
