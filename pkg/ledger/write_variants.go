package ledger

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// writeSQL names fourteen tables, and a batch of a few events writes rows to
// half of them. PostgreSQL starts every part of a statement however empty
// its arrays (it opens the table and its indexes, sets up the insert, runs
// unnest on nothing): 0.5 ms of its CPU for a call with no rows at all, a
// third of a small transaction's. So a flush sends writeSQL cut down to the
// parts that have rows, their parameters renumbered; each such variant is
// prepared once per connection, as writeSQL was, and a workload uses a
// handful of them.

// writePart is one data-modifying CTE of writeSQL.
type writePart struct {
	name   string
	sql    string // "name AS (...)"
	driver int    // the parameter whose array holds its rows: none, no part
	params []int  // every parameter it uses
}

// writeVariant is writeSQL with the parts of a mask, renumbered.
type writeVariant struct {
	sql    string
	params []int // the original parameter each new one ($1, $2…) is
}

var (
	writeParts, writeFinal = splitWriteSQL(writeSQL)
	writeVariants          sync.Map // uint32 mask → *writeVariant
	paramRE                = regexp.MustCompile(`\$(\d+)`)
	textArrayRE            = regexp.MustCompile(`\$(\d+)::text\[\]`)
)

// splitWriteSQL cuts writeSQL into its CTEs and its final SELECT (the
// notification, which needs the results part).
func splitWriteSQL(sql string) ([]writePart, string) {
	body := strings.TrimSpace(sql)
	body, ok := strings.CutPrefix(body, "WITH ")
	if !ok {
		panic("ledger: writeSQL does not start with WITH")
	}
	i := strings.LastIndex(body, "\nSELECT ")
	final := body[i+1:]
	body = body[:i]
	starts := regexp.MustCompile(`(?m)(?:^|, )(\w+) AS \(\n`).FindAllStringSubmatchIndex(body, -1)
	parts := make([]writePart, len(starts))
	for k, m := range starts {
		end := len(body)
		if k+1 < len(starts) {
			end = starts[k+1][0]
		}
		p := writePart{name: body[m[2]:m[3]], sql: strings.TrimSpace(body[m[2]:end])}
		for _, pm := range paramRE.FindAllStringSubmatch(p.sql, -1) {
			n, _ := strconv.Atoi(pm[1])
			if !slices.Contains(p.params, n) {
				p.params = append(p.params, n)
			}
		}
		// Every part's first text[] parameter is a column of its rows.
		if dm := textArrayRE.FindStringSubmatch(p.sql); dm != nil {
			p.driver, _ = strconv.Atoi(dm[1])
		}
		parts[k] = p
	}
	return parts, final
}

// writeMask is the set of parts with rows, given writeSQL's arguments.
func writeMask(args []any) uint32 {
	var mask uint32
	for k, p := range writeParts {
		if p.driver == 0 {
			mask |= 1 << k
			continue
		}
		if ids, ok := args[p.driver-1].([]string); !ok || len(ids) > 0 {
			mask |= 1 << k
		}
	}
	return mask
}

// variantOf returns writeSQL reduced to the parts of mask.
func variantOf(mask uint32) *writeVariant {
	if v, ok := writeVariants.Load(mask); ok {
		return v.(*writeVariant)
	}
	var ctes []string
	notify := false
	for k, p := range writeParts {
		if mask&(1<<k) != 0 {
			ctes = append(ctes, p.sql)
			notify = notify || p.name == "results"
		}
	}
	final := "SELECT 1"
	if notify {
		final = writeFinal
	}
	sql := "WITH " + strings.Join(ctes, ", ") + "\n" + final
	v := &writeVariant{}
	renumbered := map[int]int{}
	v.sql = paramRE.ReplaceAllStringFunc(sql, func(s string) string {
		n, _ := strconv.Atoi(s[1:])
		m, ok := renumbered[n]
		if !ok {
			v.params = append(v.params, n)
			m = len(v.params)
			renumbered[n] = m
		}
		return "$" + strconv.Itoa(m)
	})
	actual, _ := writeVariants.LoadOrStore(mask, v)
	return actual.(*writeVariant)
}

// reduceWrite returns the statement and arguments of writeSQL's parts that
// have rows; ok is false when none has.
func reduceWrite(args []any) (sql string, reduced []any, ok bool) {
	mask := writeMask(args)
	if mask == 0 {
		return "", nil, false
	}
	v := variantOf(mask)
	reduced = make([]any, len(v.params))
	for i, n := range v.params {
		if n > len(args) {
			panic(fmt.Sprintf("ledger: writeSQL uses $%d, the batch gave %d arguments", n, len(args)))
		}
		reduced[i] = args[n-1]
	}
	return v.sql, reduced, true
}
