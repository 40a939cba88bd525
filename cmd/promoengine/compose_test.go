package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/promoengine/promoengine/internal/config"
)

// No Docker engine runs where the tests run, so docker-compose.yml and the
// Dockerfile are checked against the code instead: every PROMO_* variable
// the compose file sets is one the engine reads, its environment (with the
// compose defaults) passes the engine's validation, every command is a
// subcommand, and the catalog path it applies is the one the image holds.
func TestComposeFileMatchesTheEngine(t *testing.T) {
	for _, file := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
		t.Run(file, func(t *testing.T) { checkComposeFile(t, "../../"+file) })
	}
}

func checkComposeFile(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	dockerfile, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)

	known := map[string]bool{}
	for _, cmd := range commands() {
		known[cmd.name] = true
	}
	// ${NAME:-default} → default, as docker compose substitutes it with
	// NAME unset.
	substitute := regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
	engines := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue // nats, postgres: upstream images
		}
		engines++
		require.NotEmpty(t, svc.Command, "service %s: command", name)
		require.True(t, known[svc.Command[0]], "service %s runs %q, not a promoengine command", name, svc.Command[0])
		for _, arg := range svc.Command {
			if strings.HasPrefix(arg, "/etc/promoengine/") {
				require.Contains(t, string(dockerfile), " "+arg, "service %s uses %s, which the image does not hold", name, arg)
			}
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			require.True(t, strings.HasPrefix(k, config.Prefix+"_"), "service %s: %s is not a PROMO_ variable", name, k)
			env[k] = substitute.ReplaceAllString(v, "$1")
		}
		vars := config.Variables()
		for k := range env {
			require.True(t, slices.Contains(vars, k), "service %s sets %s, which the engine does not read", name, k)
		}
		t.Run(name, func(t *testing.T) { // t.Setenv: not parallel
			for _, k := range vars {
				t.Setenv(k, env[k]) // unset in compose = empty, as envconfig sees it
				if _, ok := env[k]; !ok {
					require.NoError(t, os.Unsetenv(k))
				}
			}
			_, err := config.Load()
			require.NoError(t, err, "the environment of service %s", name)
		})
	}
	require.GreaterOrEqual(t, engines, 2, "the compose file runs the engine and applies the catalog")
}

// `promoengine help config` and the README's configuration table name every
// variable the engine reads.
func TestEveryVariableIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, v := range config.Variables() {
		require.True(t, strings.Contains(configHelp, v), "`promoengine help config` does not name %s", v)
		require.True(t, strings.Contains(string(readme), "`"+v+"`"), "README.md does not name `%s`", v)
	}
}
