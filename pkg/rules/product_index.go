package rules

import (
	"github.com/promoengine/promoengine/pkg/events"
)

// productIndex answers, for every product filter of a catalog at once,
// which filters a line matches.
//
// Scanning each filter's lists for each line made an evaluation cost
// programs × lines × (list length): a catalog of long category lists took
// seconds per quote. The index maps each listed id to the filters listing
// it, so that an evaluation looks up each id of each line once and then
// answers "does program p's filter match line i" with one bit test. The
// cost of an evaluation is then linear in the order (times at most
// denseAt, or the filter count / 64, per id) and does not depend on the
// length of the catalog's lists.
//
// Filters are numbered in the order evaluation meets them (program order,
// conditions before the buy_get pool), so that finding a filter's number
// is, over a whole evaluation, one pass over the list; the index holds no
// map keyed by pointer, so two parses of one document give deeply equal
// catalogs.
type productIndex struct {
	filters    []*ProductFilter // each filter of the catalog, by number
	ids        map[string]*posting
	categories map[string]*posting
	tags       map[string]*posting
	words      int // uint64 words of one line's set of filters
}

// posting lists the filters that list one id: as numbers while they are
// few, as a bit set once they are many, so that adding it to a line's set
// costs at most max(denseAt, words) steps.
type posting struct {
	list []int
	bits []uint64
}

const denseAt = 64

// newProductIndex indexes the product filters of c's programs (conditions
// and buy_get reward pools).
func newProductIndex(c *Catalog) *productIndex {
	x := &productIndex{ids: map[string]*posting{}, categories: map[string]*posting{}, tags: map[string]*posting{}}
	add := func(f *ProductFilter) {
		if f == nil {
			return
		}
		n := len(x.filters)
		x.filters = append(x.filters, f)
		for _, id := range f.IDs {
			x.post(x.ids, id, n)
		}
		for _, id := range f.Categories {
			x.post(x.categories, id, n)
		}
		for _, id := range f.Tags {
			x.post(x.tags, id, n)
		}
	}
	for _, p := range c.Programs {
		add(p.When.Products)
		if p.Reward.BuyGet != nil {
			add(p.Reward.BuyGet.Products)
		}
	}
	x.words = (len(x.filters) + 63) / 64
	for _, m := range []map[string]*posting{x.ids, x.categories, x.tags} {
		for _, p := range m {
			if len(p.list) >= denseAt {
				p.bits = make([]uint64, x.words)
				for _, n := range p.list {
					p.bits[n/64] |= 1 << (n % 64)
				}
				p.list = nil
			}
		}
	}
	return x
}

func (x *productIndex) post(m map[string]*posting, id string, n int) {
	p := m[id]
	if p == nil {
		p = &posting{}
		m[id] = p
	}
	// Filters are numbered in order, so a filter listing an id twice is
	// the last entry.
	if len(p.list) == 0 || p.list[len(p.list)-1] != n {
		p.list = append(p.list, n)
	}
}

// lineSets is, for each line of an order, the set of filters it matches.
type lineSets struct {
	x      *productIndex
	sets   []uint64 // line i's set is sets[i*words : (i+1)*words]
	cursor int      // where the next filter number is looked for
}

func (x *productIndex) match(lines []events.Line) *lineSets {
	s := &lineSets{x: x}
	if x.words == 0 {
		return s
	}
	s.sets = make([]uint64, len(lines)*x.words)
	for i := range lines {
		l := &lines[i]
		set := s.sets[i*x.words : (i+1)*x.words]
		x.or(set, x.ids[string(l.ProductID)])
		for _, c := range l.CategoryIDs {
			x.or(set, x.categories[string(c)])
		}
		for _, t := range l.TagIDs {
			x.or(set, x.tags[string(t)])
		}
	}
	return s
}

func (x *productIndex) or(set []uint64, p *posting) {
	if p == nil {
		return
	}
	if p.bits != nil {
		for w, b := range p.bits {
			set[w] |= b
		}
		return
	}
	for _, n := range p.list {
		set[n/64] |= 1 << (n % 64)
	}
}

// filterMatch answers whether a line matches one filter: every line for a
// nil filter, a bit test for an indexed one, and the filter's own Matches
// for one the index does not know (a catalog changed by hand after it was
// indexed). A value, not a closure: evaluation asks for one per program.
type filterMatch struct {
	s     *lineSets
	f     *ProductFilter
	lines []events.Line
	word  int
	bit   uint64
	known bool
}

func (s *lineSets) filter(f *ProductFilter, lines []events.Line) filterMatch {
	m := filterMatch{s: s, f: f, lines: lines}
	if f != nil {
		n, ok := s.number(f)
		m.known, m.word, m.bit = ok, n/64, uint64(1)<<(n%64)
	}
	return m
}

// at reports whether line i matches.
func (m filterMatch) at(i int) bool {
	switch {
	case m.f == nil:
		return true
	case m.known:
		return m.s.sets[i*m.s.x.words+m.word]&m.bit != 0
	}
	return m.f.Matches(&m.lines[i])
}

// number finds f's number, looking from where the last one was found:
// evaluation asks in numbering order, skipping some, so a whole evaluation
// costs one pass over the filters.
func (s *lineSets) number(f *ProductFilter) (int, bool) {
	fs := s.x.filters
	for k := range fs {
		j := s.cursor + k
		if j >= len(fs) {
			j -= len(fs)
		}
		if fs[j] == f {
			s.cursor = j + 1
			return j, true
		}
	}
	return 0, false
}
