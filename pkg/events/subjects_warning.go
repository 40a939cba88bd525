package events

// ResultsLevelWarning is the subject of promo.level_warning events (SPEC
// §2): promo.results.level_warning, inside PROMO_RESULTS (ResultsAll).
func (s Subjects) ResultsLevelWarning() string { return s.prefix + "promo.results.level_warning" }
