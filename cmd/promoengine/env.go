package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/promoengine/promoengine/internal/config"
)

// devEnvFile is written by a running `promoengine dev` so that commands run
// from another terminal in the same directory find its embedded servers.
const devEnvFile = ".data/dev.env"

// loadConfig reads the environment. Variables unset in the environment are
// taken from .data/dev.env when a `promoengine dev` wrote one here.
func loadConfig(c *cli) (*config.Config, error) {
	if f, err := os.Open(devEnvFile); err == nil {
		defer f.Close()
		var used []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			if !ok || strings.HasPrefix(k, "#") {
				continue
			}
			if _, set := os.LookupEnv(k); !set {
				_ = os.Setenv(k, v)
				used = append(used, k)
			}
		}
		if len(used) > 0 {
			abs, _ := filepath.Abs(devEnvFile)
			c.log.Debug().Strs("variables", used).Str("file", abs).Msg("using the servers of `promoengine dev`")
		}
	}
	return config.Load()
}

// newFlags returns a flag set whose --help prints usage and examples.
func newFlags(c *cli, name, usage, examples string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: promoengine %s\n\n", usage)
		fs.PrintDefaults()
		if examples != "" {
			fmt.Fprintf(w, "\nExamples:\n%s", examples)
		}
	}
	return fs
}

// parseFlags parses args; --help is not an error.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return true, nil
		}
		return false, usagef("%s: %v", fs.Name(), err)
	}
	return false, nil
}

func closeQuietly(c io.Closer) { _ = c.Close() }
