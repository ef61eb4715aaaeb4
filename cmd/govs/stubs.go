package main

import (
	"fmt"
	"io"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "govs run: not implemented yet")
	return 1
}

func cmdList(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "govs list: not implemented yet")
	return 1
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "govs reload: not implemented yet")
	return 1
}
