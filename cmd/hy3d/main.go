// Command hy3d turns pictures into 3D meshes with Hunyuan3D's shape models:
// `hy3d generate` for one picture on the command line, `hy3d serve` for the
// HTTP server, `hy3d engines` for model sets. Each subcommand lives in its
// own file and registers itself with register in an init function.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and returns the process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, io stdio, args []string) int
}

// stdio is what a subcommand may read and write, so tests run it in-process.
type stdio struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line is wrong
)

// commands is filled by the subcommands' init functions and only read after.
var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("hy3d: subcommand " + c.name + " registered twice")
	}
	commands[c.name] = c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stdio{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand.
func run(ctx context.Context, io stdio, args []string) int {
	if len(args) == 0 {
		usage(io.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, io, []string{"-h"})
			}
		}
		usage(io.stdout)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(io.stderr, "hy3d: unknown command %q (run `hy3d help`)\n", args[0])
		return exitUsage
	}
	return c.run(ctx, io, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: hy3d <command> [flags]   (hy3d help <command> for its flags)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// oneLine flattens a (possibly joined) error into the single line a failing
// command prints.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// usageError marks a wrong command line (exit 2) as opposed to a failed run.
type usageError struct{ error }

// exitCode prints err as one line prefixed by the command's name and maps it
// to the process exit code: -h is success, a usage error 2, any other 1.
func exitCode(stderr io.Writer, name string, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}

// newFlagSet returns a flag set whose errors become one line on stderr and
// whose usage goes to stdout on -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args, prints usage and the flags on -h (returning
// flag.ErrHelp), and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, stdout io.Writer, usage string, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
